"""What a command's numbers mean, in words (issue 27): shared by `run`, `evaluate` and `demo`.

Not a command. ``run_notes`` gives the lines printed under a run's table: the split's
diagnostics verdict with what it implies and what to do next, the unit of ``n`` for group
scorers (users or books, not texts), a calibrated operating point that misses its target on
the evaluated rest, and what a one-off ``--file`` split is (reused, label validity).
"""

from __future__ import annotations

from .. import suite
from ..diagnostics.saved import read_saved
from ..diagnostics.verdict import explain
from ..errors import MembenchError

# A group column's name -> what one group is, in the plural.
GROUP_NOUNS = {"group": "users", "user": "users", "users": "users", "author": "authors", "book": "books"}


def group_noun(split_id: str) -> str:
    """What one group of ``split_id`` is, plural ("users", "books"); "groups" when unknown."""
    try:
        column = suite.get_split(split_id).fields.get("group")
    except MembenchError:
        return "groups"
    return GROUP_NOUNS.get(str(column or "").lower(), f"groups ({column})" if column else "groups")


def is_group_record(record: dict) -> bool:
    return (record.get("counts") or {}).get("unit") == "group"


def n_cell(record: dict) -> str:
    """A table's ``n``: texts as a bare number, groups with their noun ("40 users")."""
    n = record["counts"]["n_scored"]
    return f"{n} {group_noun(record['split']['id'])}" if is_group_record(record) else str(n)


def unit_lines(records) -> list[str]:
    groups = [r for r in records if is_group_record(r)]
    if not groups:
        return []
    noun = group_noun(groups[0]["split"]["id"])
    one = noun[:-1] if noun.endswith("s") else noun
    names = ", ".join(r["scorer"]["name"] for r in groups)
    rows = groups[0]["counts"].get("n_rows")
    source = f" from {rows} texts" if rows else ""
    return [f"n for {names} counts {noun}, not texts (one score per {one}{source}): their AUC, interval and "
            f"TPR are over {noun}; every other row's n counts texts"]


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    from scipy.stats import binom

    return 1.0 if k <= 0 else float(binom.sf(k - 1, n, p))


def operating_point_warnings(records) -> list[str]:
    """A fitted operating point whose false-positive rate on the evaluated rest is above the
    target it was chosen for on the calibration subset."""
    out = []
    for r in records:
        point = r.get("operating_point") or {}
        target, rates = point.get("target_fpr"), point.get("evaluated") or {}
        if not isinstance(target, (int, float)) or "fpr" not in rates:
            continue
        fpr, n = float(rates["fpr"]), int(rates.get("n_nonmembers") or 0)
        if fpr <= target + 1e-12:
            continue
        k = round(fpr * n)
        p = binomial_tail(k, n, float(target)) if n else float("nan")
        noise = ("more than sampling noise explains" if p < 0.05 else
                 "within sampling noise of the target, but above it")
        out.append(f"warning: {r['scorer']['name']}'s operating point misses its target on the evaluated rest: FPR "
                   f"{fpr:.3f} against the target {target:g} ({k} of {n} non-members; one-sided binomial p = {p:.3g}, "
                   f"{noise}); its TPR {rates.get('tpr', float('nan')):.3f} is at that FPR, not at {target:g}. A larger "
                   "calibration subset (`membench calibration list SPLIT`) gives a threshold closer to its target")
    return out


def verdict_lines(split_id: str, results_dir, content_hash: str | None = None) -> list[str]:
    diag = read_saved(split_id, results_dir, content_hash)
    if not diag or diag.get("error") or diag.get("verdict") not in ("clean", "mild shift", "shifted"):
        return []
    implies, nxt = explain(diag["verdict"], f"--split {split_id}")
    return [f"diagnostics verdict for {split_id}: {diag['verdict'].upper()} (best text-only blind AUC "
            f"{diag['blind_auc']:.3f}): {implies}", f"next: {nxt}"]


def run_notes(records, split_id: str, results_dir, one_off=None) -> list[str]:
    """Every line above, for the records of one run on ``split_id``."""
    lines = list(one_off.lines) if one_off is not None else []
    content = records[0]["split"].get("content_hash") if records else None
    lines += verdict_lines(split_id, results_dir, content)
    lines += unit_lines(records)
    lines += operating_point_warnings(records)
    return lines
