"""Features: one batched forward pass per (target, split) -> cached per-token statistics.

Public face: ``get_features`` (cached, sharded, resumable), ``TokenStats``, ``compute``,
``tokenize``, ``plan_batches``, ``key_parts``, ``STATS``, ``FEATURE_SET_VERSION``.
"""

from __future__ import annotations

import logging

from ..targets import CONTEXT_RULE
from . import cache
from .engine import FEATURE_SET_VERSION, STATS, TokenStats, compute, plan_batches, tokenize

log = logging.getLogger(__name__)

SHARD_SAMPLES = 256


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


def pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id or 0
    return int(pad)


def shard_plan(lengths, shard_size: int) -> list[list[int]]:
    """Sample indices grouped into shards: consecutive runs of the length-sorted order
    (longest first), so every shard batches well. Depends only on the token lengths."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + shard_size] for i in range(0, len(order), shard_size)]


def get_features(
    target,
    split,
    *,
    batch_tokens: int = 16384,
    progress: bool = False,
    counter: dict | None = None,
    shard_size: int = SHARD_SAMPLES,
    padding_side: str = "right",
) -> TokenStats:
    """Token statistics for every sample of ``split`` (in its row order).

    Valid cached shards are reused; missing or corrupt ones are computed and written as each
    finishes, so an interrupted call resumes where it stopped. ``counter`` accumulates
    ``forward_passes``/``forward_tokens`` (zero on a full cache hit) and ``shards_cached``.
    """
    from tqdm.auto import tqdm

    counter = counter if counter is not None else {}
    parts = key_parts(target, split)
    key = cache.cache_key(parts)
    uids = split.samples["uid"].tolist()
    position = {u: i for i, u in enumerate(uids)}
    token_ids = None
    meta = cache.read_meta(key)
    if meta is None or meta.get("n") != len(uids) or meta.get("shard_size") != shard_size:
        token_ids = tokenize(target.tokenizer, split.samples["text"].tolist(), target.max_length)
        plan = shard_plan([len(t) for t in token_ids], shard_size)
        cache.reset(key)  # shards of another layout must never be mixed in
        cache.write_meta(key, parts, len(uids), shard_size, len(plan))
        meta = cache.read_meta(key)
    per_sample: list[dict | None] = [None] * len(uids)
    n_input = [0] * len(uids)
    todo = []
    for index in range(meta["n_shards"]):
        stats, shard_uids, problem = cache.load_shard(key, index)
        if problem:
            log.warning(problem)
        if stats is None or any(u not in position for u in shard_uids):
            todo.append(index)
            continue
        for j, u in enumerate(shard_uids):
            per_sample[position[u]] = stats.sample(j)
            n_input[position[u]] = int(stats.n_input_tokens[j])
    counter["shards_cached"] = meta["n_shards"] - len(todo)
    if todo:
        if token_ids is None:
            token_ids = tokenize(target.tokenizer, split.samples["text"].tolist(), target.max_length)
        plan = shard_plan([len(t) for t in token_ids], shard_size)
        bar = tqdm(total=sum(len(plan[i]) for i in todo), desc=f"features {target.id}",
                   disable=not progress, unit="text")
        for index in todo:
            members = plan[index]
            stats = compute(
                target.model,
                [token_ids[i] for i in members],
                pad_id=pad_id(target.tokenizer),
                device=target.device,
                batch_tokens=batch_tokens,
                counter=counter,
                padding_side=padding_side,
                max_rows=counter.get("max_rows"),
            )
            cache.save_shard(key, index, stats, [uids[i] for i in members])
            for j, i in enumerate(members):
                per_sample[i] = stats.sample(j)
                n_input[i] = int(stats.n_input_tokens[j])
            bar.update(len(members))
        bar.close()
    missing = [uids[i] for i, s in enumerate(per_sample) if s is None]
    if missing:  # the cached layout no longer covers the split: start the entry over
        log.warning("feature cache %s does not cover %d sample(s); recomputing", key[:12], len(missing))
        cache.reset(key)
        return get_features(target, split, batch_tokens=batch_tokens, progress=progress,
                            counter=counter, shard_size=shard_size, padding_side=padding_side)
    return TokenStats.from_lists(per_sample, n_input)


__all__ = [
    "FEATURE_SET_VERSION",
    "SHARD_SAMPLES",
    "STATS",
    "TokenStats",
    "compute",
    "get_features",
    "key_parts",
    "pad_id",
    "plan_batches",
    "shard_plan",
    "tokenize",
]
