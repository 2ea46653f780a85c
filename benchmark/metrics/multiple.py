"""Multiple-comparison correction for a family of paired tests.

Holm's step-down procedure (Holm 1979) controls the family-wise error rate at level alpha for
any dependence between the tests, and rejects at least as much as Bonferroni: sort the m
p-values ascending, multiply the i-th smallest (i = 0..m-1) by (m - i), take the running
maximum so the order is kept, and cap at 1. Adjusted p-values are returned in input order.
"""

from __future__ import annotations

import numpy as np

HOLM = "holm"


def holm(p_values) -> list[float]:
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()
