"""``control``: a shift control derived from materialized parent splits.

``classes``: label 1 = one class of one split, label 0 = one class of another; texts present on
both sides are dropped (and counted). ``null``: one class of one split cut into seeded random
halves. Both classes share membership status, so an AUC away from 0.5 measures shift.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from ...errors import MembenchError
from .kind import SourceKind
from .parts import Parts


class ClassOf(BaseModel):
    """One class (``label``) of one split."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: str
    label: Literal[0, 1]


def class_texts(split, label: int) -> list[str]:
    labels = split.labels()
    chosen = split.samples["uid"].map(labels) == label
    return split.samples.loc[chosen, "text"].tolist()


class ControlSource(SourceKind):
    kind: Literal["control"]
    builder: Literal["classes", "null"]
    revision: str | None = None
    positive: ClassOf | None = None  # classes: label 1
    negative: ClassOf | None = None  # classes: label 0
    of: ClassOf | None = None  # null: the class cut in halves
    seed: int | None = None  # null: the cut's seed

    @model_validator(mode="after")
    def _builder_fields(self):
        needs = {"classes": ("positive", "negative"), "null": ("of", "seed")}[self.builder]
        others = {"positive", "negative", "of", "seed"} - set(needs)
        missing = [f for f in needs if getattr(self, f) is None]
        extra = sorted(f for f in others if getattr(self, f) is not None)
        if missing:
            raise ValueError(f"the {self.builder} builder needs {' and '.join(needs)} (missing: {', '.join(missing)})")
        if extra:
            raise ValueError(f"the {self.builder} builder takes {' and '.join(needs)}, not {', '.join(extra)}")
        return self

    def parents(self) -> list[str]:
        if self.builder == "classes":
            return [self.positive.split, self.negative.split]
        return [self.of.split]

    def offline(self) -> bool:
        return True  # from its parents alone

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        if self.builder == "classes":
            pos_split, neg_split = parent(self.positive.split), parent(self.negative.split)
            pos = class_texts(pos_split, self.positive.label)
            neg = class_texts(neg_split, self.negative.label)
            overlap = set(pos) & set(neg)
            pos = [t for t in pos if t not in overlap]
            neg = [t for t in neg if t not in overlap]
            parents = {pos_split.id: pos_split.content_hash, neg_split.id: neg_split.content_hash}
            notes = {"overlap_dropped": len(overlap)}
        else:
            of = parent(self.of.split)
            texts = sorted(class_texts(of, self.of.label))  # sorted: order-free input
            order = np.random.default_rng(self.seed).permutation(len(texts))
            half = len(texts) // 2
            pos = [texts[i] for i in order[:half]]
            neg = [texts[i] for i in order[half:]]
            parents = {of.id: of.content_hash}
            notes = {}
        if not pos or not neg:
            raise MembenchError(
                f"control {spec.id} would have an empty class ({len(pos)} vs {len(neg)} texts)",
                "check the parent splits and the control's source in splits.yaml",
            )
        source = {
            "origin": "derived",
            "builder": self.builder,
            "revision": self.revision,
            "parents": parents,
            "label_meaning": spec.label_meaning,
        }
        return Parts(pos, neg, source, notes=notes)
