"""Whether a trainable scorer's fit converged, from its objective per epoch.

A fit is **converged** when it both *learned* and *settled*:

- learned: the mean training objective of the last epoch is at least ``MIN_DROP`` (5%) of the
  first epoch's below it, ``(first - last) / |first| >= 0.05``;
- settled: over the last quarter of the epochs (at least two), the objective moves by at most
  ``MAX_TAIL_RANGE`` (2%) of the first epoch's, ``(max - min) / |first| <= 0.02``.

A fit of one epoch cannot show either and is not converged. The record's ``fit.convergence``
block carries the numbers and the verdict (the harness copies it from the scorer's
``convergence()``), and a run logs a warning for an unconverged fit: its scores may be the
untrained starting point's (for MIA-Tuner: the target's loss), whatever the name says.
"""

from __future__ import annotations

import math

MIN_DROP = 0.05
MAX_TAIL_RANGE = 0.02
RULE = (f"converged = learned and settled; learned: (first - last) / |first| >= {MIN_DROP} for the mean training "
        f"objective per epoch; settled: its range over the last quarter of the epochs (at least two) is at most "
        f"{MAX_TAIL_RANGE} of |first|")


def convergence_block(by_epoch: list[float]) -> dict:
    """The record's ``fit.convergence`` block for an objective that is minimized."""
    values = [float(v) for v in by_epoch]
    if not values:
        return {"converged": False, "epochs": 0, "rule": RULE, "reason": "no epoch was trained"}
    first, last = values[0], values[-1]
    scale = max(abs(first), 1e-12)
    drop = (first - last) / scale
    window = max(2, math.ceil(len(values) / 4))
    tail = values[-window:]
    tail_range = (max(tail) - min(tail)) / scale
    learned = len(values) > 1 and drop >= MIN_DROP
    settled = len(values) >= window and tail_range <= MAX_TAIL_RANGE
    return {"converged": bool(learned and settled), "learned": bool(learned), "settled": bool(settled),
            "epochs": len(values), "objective_first": round(first, 6), "objective_last": round(last, 6),
            "objective_best": round(min(values), 6), "relative_drop": round(drop, 6),
            "tail_epochs": min(window, len(values)), "tail_relative_range": round(tail_range, 6), "rule": RULE}
