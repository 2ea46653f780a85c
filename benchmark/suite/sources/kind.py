"""``SourceKind``: the ``source:`` block of a split entry, as the model of its kind.

Each kind of source is one module of this package with one subclass: its fields (checked by
pydantic; an unknown field is refused) and what the kind does. ``SplitSpec.source_model`` is
that object, chosen by the block's ``kind``, so nothing outside asks which kind it holds.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from .parts import Parts


class SourceKind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # True: the rows depend on this machine (the local Python's text), so the split is never frozen.
    local_only: ClassVar[bool] = False

    def parents(self) -> list[str]:
        """The splits this one is derived from (built first)."""
        return []

    def offline(self) -> bool:
        """Whether membench can build it with no download (its parents aside)."""
        return False

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        """The split's rows: ``from_dir`` is a local copy of a Hub source (``--from-dir``);
        ``parent(split_id)`` loads a parent split, built first when it can be."""
        raise NotImplementedError

    def route(self, spec, pins: dict) -> str:
        """How the split can be materialized here when it is not (for `membench suite list`)."""
        return "built offline" if self.offline() else "not buildable here"

    def fetch_hint(self, spec, again: bool = False) -> str:
        """How to materialize the split (``again``: over a corrupt copy)."""
        return f"materialize it{' again' if again else ''}: membench suite fetch {spec.id}{' --force' if again else ''}"
