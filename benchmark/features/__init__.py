"""Features: one batched forward pass per (target, split) -> cached per-token statistics.

Public face: ``get_features`` (cached), ``TokenStats``, ``compute``, ``tokenize``, ``STATS``.
"""

from __future__ import annotations

import logging

from ..targets import CONTEXT_RULE
from . import cache
from .engine import FEATURE_SET_VERSION, STATS, TokenStats, compute, plan_batches, tokenize

log = logging.getLogger(__name__)


def key_parts(target, split) -> dict:
    return {
        "target": target.id,
        "revision": target.revision,
        "weights": target.weights_hash,
        "tokenizer": target.tokenizer_hash,
        "dtype": target.dtype,
        "context_rule": CONTEXT_RULE,
        "max_length": target.max_length,
        "split": split.id,
        "split_content": split.content_hash,
        "feature_set": FEATURE_SET_VERSION,
    }


def get_features(
    target, split, *, batch_tokens: int = 16384, progress: bool = False, counter=None
) -> TokenStats:
    """Token statistics for every sample of ``split`` (in its row order), from cache if valid."""
    parts = key_parts(target, split)
    key = cache.cache_key(parts)
    uids = split.samples["uid"].tolist()
    stats, problem = cache.load(key, uids)
    if problem:
        log.warning(problem)
    if stats is not None:
        return stats
    token_ids = tokenize(target.tokenizer, split.samples["text"].tolist(), target.max_length)
    pad = target.tokenizer.pad_token_id
    if pad is None:
        pad = target.tokenizer.eos_token_id or 0
    stats = compute(
        target.model,
        token_ids,
        pad_id=pad,
        device=target.device,
        batch_tokens=batch_tokens,
        progress=progress,
        counter=counter,
    )
    cache.save(key, stats, uids, parts)
    return stats


__all__ = ["STATS", "TokenStats", "compute", "get_features", "plan_batches", "tokenize"]
