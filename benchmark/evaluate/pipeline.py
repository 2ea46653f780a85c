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

On a **private** split every record is on an evaluated rest: a scorer that does not fit is
scored on the rest of ``spec.calibration`` (default ``PRIVATE_SUBSET``, the subset a submission
fits on), so no record of a private split covers rows whose labels a trainable scorer is given
(group scorers keep their unit, groups). A handle with ``verify_determinism`` (a submission) is
run twice on everything it scores, in fresh runs with fresh model access and fit meter, and the
record is refused unless both runs give bit-identical scores (``same_scores``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import diagnostics, profiling, results, suite
from ..errors import MembenchError
from .fit import fit_plan, score_fit
from .group_level import score_groups
from .handles import builtin_handles
from .plan import load
from .record import build_record
from .scoring import Scored, score_plain
from .spec import RunSpec

log = logging.getLogger(__name__)

PRIVATE_SUBSET = "cal10"  # the rest every record of a private split is scored on, unless the run names another
NAMED_ROWS = 5  # differing rows a determinism refusal names (public splits)


class NotDeterministic(MembenchError):
    """Two runs of one scorer on the same inputs gave different scores."""


def same_scores(first: Scored, second: Scored, *, private: bool) -> None:
    """Refuse ``second`` (a ``Scored`` of a repeated run) unless its scores equal ``first``'s bit
    for bit (NaN equal to NaN). The refusal names the first differing rows (or groups) on a public
    split; on a private split only their number, since which rows differ is the scorer's choice
    and would carry whatever it knows out of the evaluator."""
    a, b = np.asarray(first.scores, float), np.asarray(second.scores, float)
    if a.shape == b.shape and first.ids == second.ids and np.array_equal(a, b, equal_nan=True):
        return
    if a.shape != b.shape or first.ids != second.ids:
        differ = "the second run scored other rows"
    else:
        bad = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))))
        differ = f"{len(bad)} of {len(a)} scores differ between two runs on the same inputs"
        if not private:
            named = ", ".join(f"{first.ids[i]} ({a[i]!r} then {b[i]!r})" for i in bad[:NAMED_ROWS])
            differ += f"; first: {named}" + (" ..." if len(bad) > NAMED_ROWS else "")
    raise NotDeterministic(f"scorer {first.handle.name} is not deterministic: {differ}",
                           "seed every random choice (and do not depend on time, hash order or the process); "
                           "nothing of this run was published")


def rest_subset(plan) -> suite.calibration.Subset | None:
    """The subset whose evaluated rest every non-fitting scorer of a private split is scored on
    (None on a public split, or a private one that declares no such subset)."""
    split = plan.split
    if not split.spec.extra.get("private"):
        return None
    name = plan.spec.calibration or PRIVATE_SUBSET
    if name not in suite.calibration.subsets(split.spec):
        return None
    return suite.calibration.select(split, name)


def score(plan, handle, subset=None):
    """One scoring of ``handle`` over ``plan``: fit on ``subset`` and score its rest (a trainable
    scorer), by group (a group scorer), or row by row (on ``subset``'s rest when one is given)."""
    if handle.fits:
        return score_fit(plan, handle, subset)
    if handle.scores_groups:
        return score_groups(plan, handle)
    return score_plain(plan, handle, subset)


def score_checked(plan, handle, subset=None):
    """``score``, twice when the handle asks for its determinism to be verified (the first
    run is the one recorded: its report is kept as ``handle.last``)."""
    first = score(plan, handle, subset)
    if handle.verify_determinism:
        kept = handle.last
        try:
            second = score(plan, handle, subset)
        finally:
            handle.last = kept
        same_scores(first, second, private=bool(plan.split.spec.extra.get("private")))
    return first


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
    scored = {i: score_checked(plan, handles[i], subsets[name]) for i, name in chosen.items()}
    for i, handle in enumerate(handles):
        if i not in scored and handle.scores_groups:
            scored[i] = score_checked(plan, handle)
    private_rest = rest_subset(plan)
    for i, handle in enumerate(handles):
        if i not in scored:
            scored[i] = score_checked(plan, handle, private_rest)
    built = [(scored[i], *build_record(plan, scored[i])) for i in range(len(handles))]
    report = RunReport(spec=spec, usage={key: int(plan.feature_usage.get(key, 0))
                                         for key in ("forward_passes", "forward_tokens", "shards_cached")})
    whole_split = []
    for one, record, columns in built:
        with profiling.phase("writing"):
            path, written = results.write_record(spec.results_dir, record, one.ids, one.scores, columns=columns)
        report.paths.append(path)
        report.records.append(written)
        if one.subset is None and one.groups is None:  # never on a private split
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
