"""The suite: declared splits, their materialization, loading and verification.

Public face: ``get_split``, ``match_splits``, ``splits`` (registry), ``ensure`` (materialize
if needed, then load), ``load``, ``Split``, ``make_uid``.
"""

from __future__ import annotations

import pandas as pd

from ..errors import MembenchError
from ..home import locked
from . import demo
from .registry import SplitSpec, get_split, match_splits, splits
from .store import Split, is_materialized, load, make_uid, materialize, split_dir


def build_builtin(spec: SplitSpec) -> Split:
    """Materialize a split that membench makes itself (no download)."""
    source = spec.source
    if source.get("builder") == "pydoc":
        parts = demo.build(int(source["seed"]))
        pool = pd.DataFrame({"text": parts["pool"]})
        return materialize(
            spec,
            parts["members"],
            parts["nonmembers"],
            source={**source, "text_from": "pydoc_data.topics"},
            extra_files={"pool.parquet": pool},
        )
    raise MembenchError(f"split {spec.id}: no builder named {source.get('builder')!r}")


def ensure(split_id: str) -> Split:
    """Load a split, building it first when membench can make it offline."""
    spec = get_split(split_id)
    if not is_materialized(split_id) and spec.source.get("kind") == "builtin":
        with locked(f"split-{split_id}"):
            if not is_materialized(split_id):
                build_builtin(spec)
    return load(spec)


__all__ = [
    "Split",
    "SplitSpec",
    "ensure",
    "get_split",
    "is_materialized",
    "load",
    "make_uid",
    "match_splits",
    "split_dir",
    "splits",
]
