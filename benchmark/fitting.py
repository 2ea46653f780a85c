"""Trainable scorers in a run: ``fit`` on a calibration subset, ``score`` on the evaluated rest.

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
Only (calibration inputs, calibration labels) cross into ``fit``: a sandbox has to carry just
those across its pipe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import attacks, suite
from .attacks.fit_budget import FitBudget, FitMeter
from .errors import MembenchError
from .results.recompute import operating_point_rates


def needs_fit(scorer) -> bool:
    return "fit" in getattr(scorer, "requires", ())


def plan(spec, scorers, calibration: str | None = None) -> dict[int, str]:
    """{index of a fit scorer: the calibration subset it uses}: ``calibration`` when the run
    names one, else the scorer's ``default_calibration``. Every name is checked against the
    split's declared subsets (one line listing them) before any model is loaded."""
    if calibration is not None:
        suite.calibration.subset_spec(spec, calibration)
    chosen = {}
    for i, scorer in enumerate(scorers):
        if needs_fit(scorer):
            name = calibration or type(scorer).default_calibration
            suite.calibration.subset_spec(spec, name)
            chosen[i] = name
    return chosen


def rows_input(idx, *, uids, texts, stats, access, pool=None, neighbors=None) -> attacks.ScoringInput:
    """A ``ScoringInput`` made of the rows ``idx`` and nothing else."""
    full = attacks.ScoringInput(uids=uids, texts=texts, features=stats, access=access, pool=pool, neighbors=neighbors)
    return attacks.take_rows(full, idx)


@dataclass
class FitOutcome:
    rest: np.ndarray  # row indices of the evaluated rest, in row order
    scores: np.ndarray  # one per rest row
    fit: dict  # the record's ``fit`` block


def _failure(scorer, phase: str, exc: BaseException) -> MembenchError:
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return MembenchError(f"scorer {scorer.name}: {phase} raised {type(exc).__name__}" + (f": {text}" if text else ""),
                         "fix the scorer and run again; nothing of this run was published")


def fit_and_score(scorer, subset, *, uids, texts, stats, labels, access, budget: FitBudget | None = None,
                  pool=None, neighbors=None) -> FitOutcome:
    """Fit ``scorer`` on ``subset``'s calibration rows and score its evaluated rest.

    ``labels`` holds the split's labels in row order; only the calibration rows' entries are
    copied into what ``fit`` receives."""
    budget = budget or FitBudget()
    cal = suite.calibration.positions(uids, subset.calibration)
    rest = suite.calibration.positions(uids, subset.rest)
    calibration = rows_input(cal, uids=uids, texts=texts, stats=stats, access=access, pool=pool, neighbors=neighbors)
    cal_labels = attacks.CalibrationLabels(np.asarray(labels)[cal], scorer=scorer.name)
    meter = FitMeter(budget, scorer.name)
    try:
        with access.fitting(meter):
            scorer.fit(calibration, cal_labels)
        meter.check_time()
    except MembenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the scorer is one line
        raise _failure(scorer, "fit()", exc) from None
    finally:
        cal_labels.close()
    evaluated = rows_input(rest, uids=uids, texts=texts, stats=stats, access=access, pool=pool, neighbors=neighbors)
    try:
        scores = np.asarray(scorer.score(evaluated), dtype=float)
    except MembenchError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _failure(scorer, "score()", exc) from None
    if scores.shape != (len(rest),):
        raise MembenchError(f"scorer {scorer.name} returned shape {scores.shape} on the evaluated rest, "
                            f"expected ({len(rest)},)", "return one float per text of the ScoringInput")
    block = {
        "subset": subset.name,
        "n_calibration": len(cal),
        "calibration_members": int(np.asarray(labels)[cal].sum()),
        "calibration_nonmembers": int(len(cal) - np.asarray(labels)[cal].sum()),
        "budget": budget.as_dict(),
        "usage": meter.usage(),
    }
    return FitOutcome(rest=rest, scores=scores, fit=block)


def operating_point_block(scorer, labels: np.ndarray, scores: np.ndarray) -> dict | None:
    """The scorer's fitted operating point with the TPR/FPR it reaches on these rows (the
    evaluated rest), or None when it has none."""
    point = scorer.operating_point()
    if not point:
        return None
    if not isinstance(point.get("threshold"), (int, float)) or not np.isfinite(point["threshold"]):
        raise MembenchError(f"scorer {scorer.name}: operating_point() needs a finite 'threshold'",
                            "return {'threshold': t, ...}: member when score >= t")
    keep = np.isfinite(scores)
    rates = operating_point_rates(np.asarray(labels)[keep].astype(int), scores[keep], float(point["threshold"]))
    return {**point, "threshold": float(point["threshold"]), "evaluated": rates,
            "rule": "member when score >= threshold; TPR and FPR over the evaluated rest's finite scores"}
