"""Published figures rounded to the precision their 95% intervals support.

Rule: round the interval's half-width to one significant figure; the value and both bounds
get as many decimals as that figure needs (at least 1, at most 4). An AUC of 0.9594 with
interval [0.9410, 0.9748] (half-width 0.017) is shown as 0.96 [0.94, 0.97]; with a
half-width of 0.004 as 0.959. A degenerate interval (zero width) keeps 3 decimals. A figure
without an interval of its own (a mean over splits) takes the decimals of the least precise
figure it was made from.

Display rounding of the site; the rule itself is ``benchmark.results.published.decimals_for``
(one rule for the site and the API); the records keep full precision (the site never writes them).
"""

from __future__ import annotations

from ..results.published import DEGENERATE_DECIMALS, MAX_DECIMALS, MIN_DECIMALS  # noqa: F401
from ..results.published import decimals_for as _decimals_for


def decimals_for(lo, hi) -> int:
    """The decimals an interval [lo, hi] supports: the rule of ``results.public_view``, so the
    site and the API never disagree on a figure."""
    return _decimals_for([lo, hi])


def rounded(value, decimals: int):
    return None if value is None else round(float(value), decimals)


def text(value, decimals: int, sign: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def interval_text(lo, hi, decimals: int) -> str:
    return f"[{text(lo, decimals)}, {text(hi, decimals)}]"
