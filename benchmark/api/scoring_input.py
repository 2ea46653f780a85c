"""``ScoringInput``: everything a scorer may see of a run, never a label."""

from __future__ import annotations

from dataclasses import dataclass

from .capabilities import labels_outside_fit
from .model_access import DeniedAccess, ModelAccess
from .token_stats import TokenStats


@dataclass
class ScoringInput:
    """What a scorer may see: opaque ids, texts, the cached token statistics and, for the
    capabilities it declared, a ``ModelAccess``. Never labels (``inputs.labels`` is refused:
    only ``fit`` receives the calibration subset's labels, as its own argument)."""

    uids: list[str]
    texts: list[str]
    features: TokenStats | None = None
    access: ModelAccess | None = None
    # A declared pool of non-member texts disjoint from ``texts`` (ReCaLL prefixes, DC-PDD's
    # frequency corpus, neighbour vocabularies); None when the run declares none.
    pool: list[str] | None = None
    # Stored neighbours per uid (e.g. MIMIR's), when the split carries them.
    neighbors: dict[str, list[str]] | None = None
    # ``groups`` capability only: the opaque group (user) of each row, aligned with ``uids``;
    # the scorer returns one score per group of ``group_ids`` (see ``group_scores``).
    groups: list[str] | None = None

    @property
    def group_ids(self) -> list[str]:
        """The distinct groups of the rows, sorted: the order of a group scorer's output."""
        return sorted(set(self.groups or ()))

    def __post_init__(self):
        if self.access is None:  # a clear error, never "'NoneType' object has no attribute ..."
            self.access = DeniedAccess()

    @property
    def labels(self):
        raise labels_outside_fit(f"scorer {getattr(self.access, 'scorer', None)}"
                                 if getattr(self.access, "scorer", None) else "the scorer")


def take_rows(inputs: ScoringInput, idx) -> ScoringInput:
    """The same input restricted to rows ``idx`` (in that order): uids, texts, token
    statistics, neighbours; the access and the pool are shared."""
    idx = [int(i) for i in idx]
    stats = inputs.features
    feats = None if stats is None else stats.take(idx)  # every per-sample and per-token array
    uids = [inputs.uids[i] for i in idx]
    neighbors = None if inputs.neighbors is None else {u: inputs.neighbors[u] for u in uids if u in inputs.neighbors}
    groups = None if inputs.groups is None else [inputs.groups[i] for i in idx]
    return ScoringInput(uids=uids, texts=[inputs.texts[i] for i in idx], features=feats, access=inputs.access,
                        pool=inputs.pool, neighbors=neighbors, groups=groups)
