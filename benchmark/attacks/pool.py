"""The declared non-member pool shared by ReCaLL, DC-PDD and neighbour generation."""

from __future__ import annotations

from ..errors import MembenchError


def checked_pool(inputs, scorer_name: str) -> list[str]:
    """The pool, refusing a missing pool or one that shares a text with the evaluated set."""
    pool = [t for t in (inputs.pool or []) if t and t.strip()]
    if not pool:
        raise MembenchError(
            f"scorer {scorer_name} needs a declared non-member pool",
            "pass --pool FILE (a parquet/jsonl/csv/txt of non-member texts), or use a split "
            "that ships pool.parquet",
        )
    evaluated = {t.strip() for t in inputs.texts}
    overlap = sum(t.strip() in evaluated for t in pool)
    if overlap:
        raise MembenchError(
            f"the pool given to {scorer_name} shares {overlap} text(s) with the evaluated split",
            "declare a pool disjoint from the evaluated texts",
        )
    return pool
