"""What the leaderboard shows of a record: metrics at the precision their intervals support.

Result files keep full precision (metrics are recomputed and compared from them). Whatever is
shown to the public (the site's tables, plots and CSV/JSON downloads, the JSON API) should go
through ``public_view``: a full-precision AUC is a label oracle (submit, move one sample's
score, read the change: one label per submission), and a ROC curve with one step per sample
hands over every label in score order at once. ``public_view`` therefore

- rounds every metric to the decimal its 95% interval supports (``decimals_for``: an AUC of
  0.8734 with interval [0.838, 0.905], half-width 0.034, is shown as 0.87 [0.84, 0.91]; at
  least 1 and at most 4 decimals), the interval itself to the same decimal;
- replaces the ROC curve by its values on a fixed grid of ``ROC_GRID`` false-positive rates
  (the largest TPR at FPR <= each grid point, the same convention as the TPR metrics),
  rounded to 3 decimals.

Combined with per-submitter rate limits this caps what one submission can reveal; it does not
make public labels secret (public splits' labels are public by construction: see private
splits).
"""

from __future__ import annotations

import copy
import math

import numpy as np

ROC_GRID = tuple(sorted({0.0, 1.0, *np.round(np.logspace(-3, 0, 31), 6).tolist(),
                         *np.round(np.linspace(0.05, 0.95, 19), 6).tolist()}))
MIN_DECIMALS, MAX_DECIMALS, DEGENERATE_DECIMALS = 1, 4, 3


def decimals_for(ci) -> int:
    """Decimals that a value with 95% interval ``ci`` supports: the interval's half-width
    rounded to one significant figure decides (0.017 -> 0.02: 2 decimals; 0.096 -> 0.1: 1), at
    least 1 and at most 4; a missing or degenerate (zero-width) interval keeps 3. The one rule
    for everything shown to the public (site, downloads, API)."""
    if not ci or ci[0] is None or ci[1] is None:
        return DEGENERATE_DECIMALS
    half = abs(float(ci[1]) - float(ci[0])) / 2
    if not math.isfinite(half) or half <= 0:
        return DEGENERATE_DECIMALS
    exponent = math.floor(math.log10(half))
    if round(half / 10**exponent) >= 10:
        exponent += 1
    return int(min(MAX_DECIMALS, max(MIN_DECIMALS, -exponent)))


def round_metric(value, ci, decimals: int | None = None):
    """(value, interval) rounded to ``decimals`` (default: what ``ci`` supports)."""
    d = decimals_for(ci) if decimals is None else decimals
    r = lambda x: None if x is None else round(float(x), d)  # noqa: E731
    return r(value), (None if ci is None else [r(ci[0]), r(ci[1])])


def roc_on_grid(fpr, tpr) -> dict:
    """The ROC curve at the fixed FPR grid: the largest TPR among points with FPR <= each."""
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    out = []
    for f in ROC_GRID:
        ok = fpr <= f + 1e-12
        out.append(round(float(tpr[ok].max()) if ok.any() else 0.0, 3))
    return {"fpr": list(ROC_GRID), "tpr": out, "grid": "fixed FPR grid; TPR = largest TPR with FPR <= grid point"}


def public_view(record: dict) -> dict:
    """A copy of ``record`` with its metrics as the public may see them (see module doc)."""
    out = copy.deepcopy(record)
    m = out.get("metrics") or {}
    if "auc" in m:
        d = decimals_for(m.get("auc_ci95"))
        m["auc"], m["auc_ci95"] = round_metric(m["auc"], m.get("auc_ci95"), d)
        for key in ("best_blind_auc", "excess_over_blind"):
            if m.get(key) is not None:
                m[key] = round(float(m[key]), d)
        m["shown_decimals"] = d
    for entry in (m.get("tpr_at_fpr") or {}).values():
        if entry.get("value") is not None:
            entry["value"], entry["ci95"] = round_metric(entry["value"], entry.get("ci95"))
    if m.get("roc"):
        m["roc"] = roc_on_grid(m["roc"]["fpr"], m["roc"]["tpr"])
    return out
