"""``run``: one evaluation, suite -> features -> scorers -> metrics -> results, for a ``RunSpec``.

The evaluator is the only place where labels meet scores: scorers get uids, texts and
features; labels are read afterwards, aligned by uid, and used for metrics alone (and the
calibration rows' labels, which cross into ``fit``).

In order: the plan is loaded (``plan.load``: every name, the calibration subsets trainable
scorers use included, is checked before a model loads); trainable scorers are fitted and scored first
(``fit.score_fit``), then group scorers (``group_level.score_groups``), then every other one
(``scoring.score_plain``); every record is built (``record.build_record``: labels are read
there); and only then is anything written, so a failed fit, a wrong group output or any
scorer's fault publishes nothing. Last, with a calibration subset in play (a trainable scorer,
``spec.calibration``, or a subset some record of the split is already on), the split's
whole-split records are also derived on that subset's evaluated rest
(``results.derive_on_rest``), so every scorer is compared on the same texts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .. import diagnostics, profiling, results, suite
from .fit import fit_plan, score_fit
from .group_level import score_groups
from .handles import builtin_handles
from .plan import load
from .record import build_record
from .scoring import score_plain
from .spec import RunSpec

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did: the records it wrote (as written, in the order of its scorers), their
    files, the default scorers it left out (``spec.skipped``), the feature pass's usage
    (``forward_passes``, ``forward_tokens``, ``shards_cached``) and the records it derived on a
    calibration subset's rest."""

    spec: RunSpec
    records: list[dict] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    derived: list[Path] = field(default_factory=list)

    @property
    def skipped(self) -> tuple[dict, ...]:
        return self.spec.skipped


def run(spec: RunSpec, handles=None) -> RunReport:
    """Score ``spec.split`` on ``spec.target`` with ``handles`` (default: an in-process handle
    for each of ``spec.scorers``); write and return the records (see the module doc)."""
    handles = list(handles) if handles is not None else builtin_handles(spec.scorers)
    plan = load(spec, handles)  # every name checked before a model loads
    chosen = fit_plan(plan.split.spec, handles, spec.calibration)
    subsets = {name: suite.calibration.select(plan.split, name)
               for name in sorted(set(chosen.values()) | ({spec.calibration} if spec.calibration else set()))}
    scored = {i: score_fit(plan, handles[i], subsets[name]) for i, name in chosen.items()}
    for i, handle in enumerate(handles):
        if i not in scored and handle.scores_groups:
            scored[i] = score_groups(plan, handle)
    for i, handle in enumerate(handles):
        if i not in scored:
            scored[i] = score_plain(plan, handle)
    built = [(scored[i], *build_record(plan, scored[i])) for i in range(len(handles))]
    report = RunReport(spec=spec, usage={key: int(plan.feature_usage.get(key, 0))
                                         for key in ("forward_passes", "forward_tokens", "shards_cached")})
    whole_split = []
    for one, record, columns in built:
        with profiling.phase("writing"):
            path, written = results.write_record(spec.results_dir, record, one.ids, one.scores, columns=columns)
        report.paths.append(path)
        report.records.append(written)
        if one.subset is None and one.groups is None:
            whole_split.append(path)
    declared = suite.calibration.subsets(plan.split.spec)
    for name in sorted(set(subsets) | set(results.subsets_in(spec.results_dir, spec.split))):
        if name not in declared:
            log.warning("records of %s on calibration subset %s left as they are: the subset is no longer declared",
                        spec.split, name)
            continue
        subset = subsets.get(name) or suite.calibration.select(plan.split, name)
        # every record of the split on this subset's rest (for a run without fit scorers: those it wrote)
        report.derived += results.derive_on_rest(spec.results_dir, plan.split, subset,
                                                 only=None if name in subsets else whole_split)
    return report


def run_blind(split_id: str, *, results_dir: Path) -> dict:
    """Every blind baseline on ``split`` (results with no target, plus the diagnostics JSON);
    returns the best baseline's record."""
    return diagnostics.write_blind_results(split_id, results_dir)[0]
