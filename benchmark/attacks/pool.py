"""The declared non-member pool shared by ReCaLL, DC-PDD, SPV-MIA's self-prompts and RMIA's population."""

from __future__ import annotations

from ..errors import MembenchError


def checked_pool(inputs, scorer_name: str, minimum: int = 1) -> list[str]:
    """The pool, refusing one of fewer than ``minimum`` texts or one that shares a text with
    the evaluated set."""
    pool = [t for t in (inputs.pool or []) if t and t.strip()]
    if len(pool) < minimum:
        raise MembenchError(
            f"scorer {scorer_name} needs a declared non-member pool"
            + (f" of at least {minimum} texts" if minimum > 1 else ""),
            "pass --pool FILE (a parquet/jsonl/csv/txt of non-member texts of the split's domain), or "
            "use a split that ships pool.parquet",
        )
    evaluated = {t.strip() for t in inputs.texts}
    overlap = sum(t.strip() in evaluated for t in pool)
    if overlap:
        raise MembenchError(
            f"the pool given to {scorer_name} shares {overlap} text(s) with the evaluated split",
            "declare a pool disjoint from the evaluated texts",
        )
    return pool
