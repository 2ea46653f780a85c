"""A run's loaded inputs (``Plan``): what its scorers see, and apart from it, the split.

``load(spec, handles)`` resolves and loads, in this order, stopping at the first problem with
one line: the split and the target from their registries; the pair's label validity (only
when a scorer uses the model); the materialized split; the declared pool (for built-ins);
each scorer's needs (a declared calibration subset, a pool, a reference model); the target and the reference model; the
target's token statistics of the split (from the feature cache when present). Models and
statistics are loaded only when a scorer uses them: a text-only submission loads neither.

What a scorer may see is built from the plan by ``inputs_for`` (uids, texts, statistics, the
pool, stored neighbours, restricted to the rows it scores) and ``access_for`` (a
``MeteredModelAccess`` granted its declared capabilities). The split itself stays in the plan:
its labels are read by the evaluator alone (``labels``), after scoring, or for the
calibration rows that cross into ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import diagnostics, features, suite, targets
from ..api import ScoringInput, take_rows
from ..errors import MembenchError
from ..hashing import sha256_json
from .fit import fit_plan
from .model_access import MeteredModelAccess, SplitTexts
from .spec import RunSpec, check_validity, load_pool


def best_blind_auc(results_dir: Path | None, split_id: str, content_hash: str | None = None, *,
                   unit: str = "sample", tokenizer: str | None = None) -> float | None:
    """The split's best blind-baseline AUC at ``unit`` (``diagnostics.best_blind_auc`` of its
    saved diagnostics, ``diagnostics.read_saved``: ``sample`` for text scorers, ``group`` for
    group scorers; with ``tokenizer``, the target's tokenizer baseline counts too), or None when
    it has not been diagnosed (for this version of the split, with ``content_hash``)."""
    return diagnostics.best_blind_auc(diagnostics.read_saved(split_id, results_dir, content_hash), unit=unit,
                                      tokenizer=tokenizer)


@dataclass
class Plan:
    spec: RunSpec
    split: object  # the materialized split: its labels are read by the evaluator alone
    target_id: str  # the target's name in records
    validity: dict | None  # the pair's label validity (None when no scorer uses the model)
    target: object | None = None  # a targets.TargetHandle
    reference: object | None = None
    stats: object | None = None  # the target's TokenStats of every sample of the split, in row order
    feature_usage: dict = field(default_factory=dict)  # the feature pass: forward_passes, forward_tokens, ...
    pool: list[str] | None = None
    pool_info: dict | None = None  # what records say about the pool (never its local path)
    neighbors: dict | None = None
    blind: float | None = None  # the split's best blind-baseline AUC over texts (text scorers)
    blind_group: float | None = None  # over groups (group scorers), on a split with groups

    @cached_property
    def uids(self) -> list[str]:
        return self.split.samples["uid"].tolist()

    @cached_property
    def texts(self) -> list[str]:
        return self.split.samples["text"].tolist()

    @cached_property
    def split_texts(self) -> SplitTexts:
        """What a model access may know of the split (no labels, no folder)."""
        return SplitTexts.of(self.split)

    @cached_property
    def rows(self) -> np.ndarray:
        """The rows a plain scorer scores: every row, or the first ``spec.limit``."""
        n = len(self.uids) if self.spec.limit is None else min(self.spec.limit, len(self.uids))
        return np.arange(n)

    def rest_rows(self, subset) -> np.ndarray:
        """The rows of ``subset``'s evaluated rest, in row order (within the first ``spec.limit``
        rows on a validation run)."""
        rest = suite.calibration.positions(self.uids, subset.rest)
        return rest if self.spec.limit is None else rest[rest < self.spec.limit]

    def labels(self) -> np.ndarray:
        """Every row's label (1 = member), in row order. Evaluator use only."""
        return self.split.labels().reindex(self.uids).to_numpy()

    def gets_features(self, handle) -> bool:
        return self.stats is not None and (handle.in_process or "features" in handle.requires)

    def n_scored(self, handle, rows):
        """Scored tokens per row for the output check, when the handle was given statistics."""
        return self.stats.n_scored()[rows] if self.gets_features(handle) else None

    def access_for(self, handle) -> MeteredModelAccess | None:
        """The metered model access for ``handle`` (None when the run loaded no model)."""
        if self.target is None:
            return None
        whole = self.spec.limit is None  # the reference's cached statistics cover the whole split
        return MeteredModelAccess(self.target, granted=handle.requires, reference=self.reference,
                                  split_texts=self.split_texts if whole else None,
                                  batch_tokens=self.spec.batch_tokens, progress=self.spec.progress,
                                  scorer=handle.name)

    def inputs_for(self, handle, access, rows) -> ScoringInput:
        """What ``handle`` sees of ``rows``: uids and texts; statistics, the pool and stored
        neighbours as its kind allows (``ScorerHandle.in_process``); the access."""
        full = ScoringInput(uids=self.uids, texts=self.texts,
                            features=self.stats if self.gets_features(handle) else None, access=access,
                            pool=self.pool if handle.in_process else None,
                            neighbors=self.neighbors if handle.in_process else None)
        every = len(rows) == len(self.uids) and bool(np.all(np.asarray(rows) == np.arange(len(self.uids))))
        return full if every else take_rows(full, rows)  # every row: the statistics as they are, no copy


def load(spec: RunSpec, handles) -> Plan:
    """Load what ``handles`` need for ``spec`` (see the module doc)."""
    sspec = suite.get_split(spec.split)
    tspec = targets.get_target(spec.target, name=spec.target_name)
    uses_model = any(h.in_process or h.requires for h in handles)
    validity = check_validity(sspec, tspec.id, spec.allow_invalid) if uses_model else None
    split = suite.ensure(spec.split)
    in_process = any(h.in_process for h in handles)
    pool = load_pool(spec.pool) if spec.pool is not None and in_process else None
    fit_plan(sspec, handles, spec.calibration)  # an undeclared calibration subset: one line, before any load
    for handle in handles:
        if handle.needs_pool and pool is None:
            raise MembenchError(f"scorer {handle.name} needs a declared non-member pool for {spec.split}",
                                "pass --pool FILE (texts disjoint from the split)")
        if "reference" in handle.requires and spec.reference is None:
            raise MembenchError(f"scorer {handle.name} needs a reference model",
                                "pass --reference TARGET (a registry id or a local model directory)")
    plan = Plan(spec=spec, split=split, target_id=tspec.id, validity=validity, pool=pool)
    if pool is not None:  # the file's name only: a local path is one machine's layout
        plan.pool_info = {"file": Path(spec.pool).name, "n_texts": len(pool), "sha256": sha256_json(pool)}
    if in_process and getattr(split, "has_neighbors", False):
        plan.neighbors = {u: list(v) for u, v in split.neighbors().items()}
    plan.blind = best_blind_auc(spec.diagnostics_from, split.id, split.content_hash)
    plan.blind_group = best_blind_auc(spec.diagnostics_from, split.id, split.content_hash, unit="group")
    if not uses_model:
        return plan
    model = dict(device=spec.device, dtype=spec.dtype, context_rule=spec.context_rule, verify=spec.verify,
                 compile=spec.compile)
    plan.target = targets.load_target(spec.target, **model)
    tokenizer = plan.target.tokenizer_hash  # the target's tokenizer baseline counts, where diagnosed
    plan.blind = best_blind_auc(spec.diagnostics_from, split.id, split.content_hash, tokenizer=tokenizer)
    plan.blind_group = best_blind_auc(spec.diagnostics_from, split.id, split.content_hash, unit="group",
                                      tokenizer=tokenizer)
    if spec.reference and any("reference" in h.requires for h in handles):
        plan.reference = targets.load_target(spec.reference, **model)
    if in_process or any("features" in h.requires for h in handles):
        plan.stats = features.get_features(plan.target, split, batch_tokens=spec.batch_tokens, progress=spec.progress,
                                           counter=plan.feature_usage)
    return plan
