"""``builtin``: splits membench cuts itself, offline (the demo: ``suite.demo``'s pydoc passages)."""

from __future__ import annotations

from typing import ClassVar, Literal

import pandas as pd

from .. import demo
from .kind import SourceKind
from .parts import Parts


class BuiltinSource(SourceKind):
    kind: Literal["builtin"]
    builder: Literal["pydoc"]
    revision: str
    seed: int | Literal["secret"]  # "secret": drawn at first build, kept under MEMBENCH_HOME (a private split)

    local_only: ClassVar[bool] = True  # cut from this Python's pydoc_data text

    def offline(self) -> bool:
        return True

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        parts = demo.build(demo.secret_seed(spec.id) if self.seed == "secret" else int(self.seed))
        return Parts(parts["members"], parts["nonmembers"], source={**spec.source, "text_from": "pydoc_data.topics"},
                     extra_files={"pool.parquet": pd.DataFrame({"text": parts["pool"]})})
