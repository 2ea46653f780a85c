"""Scorer specs from the command line: ``name``, ``name:key=value,key=value`` and grids.

A value list after a key is a grid: ``min_k:k=0.05,0.1,0.2,0.5`` is four settings of
``min_k`` and ``recall:shots=1,2,seed=0,1`` four settings of ``recall`` (the product). An item
without ``=`` is another value of the key before it. Values are cast against the scorer's
signature (``Scorer.canonical_params``): a wrong type or an unknown key is one error line
naming the accepted parameters, and a value equal to the default is dropped, so every
setting has one canonical form.
"""

from __future__ import annotations

import itertools

from ..errors import MembenchError
from .base import scorer_class


def parse(spec: str) -> tuple[str, dict[str, list[str]]]:
    """``name:key=v1,v2,key2=v3`` -> (name, {key: [v1, v2], key2: [v3]}) with raw strings."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise MembenchError(f"scorer spec '{spec}' has no scorer name", "write e.g. --scorer min_k:k=0.1")
    grid: dict[str, list[str]] = {}
    key = None
    for item in rest.split(","):
        if not item.strip():
            continue
        k, eq, value = item.partition("=")
        if eq:
            key = k.strip()
            if not key:
                raise MembenchError(f"scorer parameter '{item}' in '{spec}' has no name", "write e.g. min_k:k=0.1")
            if key in grid:
                raise MembenchError(f"scorer parameter '{key}' appears twice in '{spec}'",
                                    f"list its values once: {key}=v1,v2")
            grid[key] = [value.strip()]
        elif key is None:
            raise MembenchError(f"scorer parameter '{item}' in '{spec}' is not key=value",
                                "write e.g. --scorer min_k:k=0.1 (or a grid: min_k:k=0.05,0.1)")
        else:
            grid[key].append(item.strip())
    return name, grid


def expand(spec) -> list[tuple[str, dict]]:
    """Every setting a spec names, as (scorer name, canonical params), duplicates removed.

    ``spec`` is a string or a (name, params) pair (params values single, not lists)."""
    if isinstance(spec, str):
        name, grid = parse(spec)
    else:
        name, params = spec
        grid = {k: [v] for k, v in (params or {}).items()}
    cls = scorer_class(name)
    out: list[tuple[str, dict]] = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = cls.canonical_params(dict(zip(keys, values)))
        if (name, params) not in out:
            out.append((name, params))
    return out


def build(name: str, params: dict):
    """The scorer object for canonical ``params`` (a value the scorer refuses is one line)."""
    try:
        return scorer_class(name)(**params)
    except (TypeError, ValueError) as exc:
        raise MembenchError(f"scorer {name}: {exc}", f"see the parameters of {name} in `membench run --help`") from None
