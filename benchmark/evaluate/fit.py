"""Trainable scorers in a run: ``fit`` on a calibration subset, score its evaluated rest.

For a scorer that declares ``fit`` the harness (never the scorer) picks the rows:

- ``fit(calibration, labels)`` gets a ``ScoringInput`` built from the calibration rows alone
  (their uids, texts, token statistics, neighbours; the declared pool; the metered access) and
  a ``CalibrationLabels`` built from those rows' labels alone, readable while ``fit`` runs. No
  label of the evaluated rest exists in anything ``fit`` receives;
- ``score`` then gets a ``ScoringInput`` built from the evaluated rest alone, so no
  calibration sample is ever scored or evaluated.

Everything ``fit`` does with the model is charged to a ``FitMeter`` through the access object
and capped by the run's ``FitBudget``; a budget exceeded, a ``fit`` or ``score`` that raises,
or a wrong output is one line (``MembenchError``), raised before the run writes anything.
Only (calibration inputs, calibration labels) cross into ``fit`` (a ``FitTask``): the sandboxed
handle carries just those across its pipe.
"""

from __future__ import annotations

import numpy as np

from .. import profiling, suite
from ..attacks.fit_budget import FitMeter
from ..errors import MembenchError
from ..results.recompute import operating_point_rates
from .handles import FitTask
from .scoring import Scored, used_by


def fit_plan(split_spec, handles, calibration: str | None = None) -> dict[int, str]:
    """{index of a trainable handle: the calibration subset it uses}: ``calibration`` when the
    run names one, else the handle's ``default_calibration``. Every name is checked against the
    split's declared subsets (one line listing them) before any model is loaded."""
    if calibration is not None:
        suite.calibration.subset_spec(split_spec, calibration)
    chosen = {}
    for i, handle in enumerate(handles):
        if handle.fits:
            name = calibration or handle.default_calibration
            suite.calibration.subset_spec(split_spec, name)
            chosen[i] = name
    return chosen


def score_fit(plan, handle, subset) -> Scored:
    """Fit ``handle`` on ``subset``'s calibration rows and score its evaluated rest (see the
    module doc). Only the calibration rows' labels are read here."""
    cal = suite.calibration.positions(plan.uids, subset.calibration)
    rest = plan.rest_rows(subset)
    access = plan.access_for(handle)
    labels = plan.labels()[cal]
    task = FitTask(inputs=plan.inputs_for(handle, access, cal), labels=labels,
                   meter=FitMeter(plan.spec.fit_budget, handle.name))
    with profiling.phase("scoring", handle.name):
        output = handle.run(plan.inputs_for(handle, access, rest), task)
    scores = handle.checked(output, len(rest), plan.n_scored(handle, rest))
    block = {
        "subset": subset.name,
        "n_calibration": len(cal),
        "calibration_members": int(labels.sum()),
        "calibration_nonmembers": int(len(cal) - labels.sum()),
        "budget": task.meter.budget.as_dict(),
        "usage": task.meter.usage(),
    }
    return Scored(handle, [plan.uids[i] for i in rest], scores, rest, subset=subset, fit=block,
                  used=used_by(access))


def operating_point_block(handle, labels: np.ndarray, scores: np.ndarray) -> dict | None:
    """The handle's fitted operating point with the TPR/FPR it reaches on these rows (the
    evaluated rest), or None when it has none."""
    point = handle.operating_point()
    if not point:
        return None
    if not isinstance(point.get("threshold"), (int, float)) or not np.isfinite(point["threshold"]):
        raise MembenchError(f"scorer {handle.name}: operating_point() needs a finite 'threshold'",
                            "return {'threshold': t, ...}: member when score >= t")
    keep = np.isfinite(scores)
    rates = operating_point_rates(np.asarray(labels)[keep].astype(int), scores[keep], float(point["threshold"]))
    return {**point, "threshold": float(point["threshold"]), "evaluated": rates,
            "rule": "member when score >= threshold; TPR and FPR over the evaluated rest's finite scores"}
