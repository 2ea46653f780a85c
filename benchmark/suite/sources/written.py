"""``written``: a split whose rows the program that registered it wrote directly
(``suite.register_split`` then ``suite.store.materialize``: a script, a test's tiny split)."""

from __future__ import annotations

from typing import Literal

from ...errors import MembenchError
from .kind import SourceKind
from .parts import Parts


class WrittenSource(SourceKind):
    kind: Literal["written"]
    made_by: str  # what wrote it, to run again

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        raise MembenchError(f"split {spec.id} was written by {self.made_by}, not fetched", self.fetch_hint(spec))

    def fetch_hint(self, spec, again: bool = False) -> str:
        return f"run {self.made_by} again"
