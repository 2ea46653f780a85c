"""``finetune``: the split of a fine-tuning recipe, written by `membench finetune RECIPE` with
its target (the labels are valid for that target alone)."""

from __future__ import annotations

from typing import Literal

from ...errors import MembenchError
from .kind import SourceKind
from .parts import Parts


class FinetuneSource(SourceKind):
    kind: Literal["finetune"]
    recipe: str
    recipe_sha256: str
    build_key: str

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        raise MembenchError(f"split {spec.id} is made by training recipe {self.recipe}, not fetched",
                            self.fetch_hint(spec))

    def fetch_hint(self, spec, again: bool = False) -> str:
        return f"run `membench finetune {self.recipe}{' --replace' if again else ''}`"
