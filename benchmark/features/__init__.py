"""Features: one batched forward pass per (target, split) -> cached per-token statistics.

Public face: ``get_features`` (cached, sharded, resumable), ``text_stats`` (the same statistics
of any texts, uncached), ``TokenStats``, ``compute`` (pre-tokenized rows), ``tokenize``,
``encode``, ``plan_batches``, ``key_parts``, ``STATS``, ``FEATURE_SET_VERSION``, ``TokenBudget``.

A text becomes forward rows under the target's context rule (``target.context_rule``, see
``benchmark.targets.context``): one row of its first ``max_length`` tokens under
``truncate-head``, MIMIR's overlapping windows under ``sliding-window``. Either way each scored
token appears once, and the text's statistics are its rows' statistics in token order, with the
text's token count, the characters its input tokens cover and each scored token's end offset.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from .. import profiling
from ..api import STATS, TokenStats
from ..targets import CONTEXT_RULE, context_windows
from . import cache
from .batching import TokenBudget, probe_for
from .forward import FEATURE_SET_VERSION, compute, encode, plan_batches, tokenize

log = logging.getLogger(__name__)

SHARD_SAMPLES = 256


def key_parts(target, split) -> dict:
    return {
        "target": target.id,
        "revision": target.revision,
        "weights": target.weights_hash,
        "tokenizer": target.tokenizer_hash,
        "dtype": target.dtype,
        "context_rule": getattr(target, "context_rule", CONTEXT_RULE),
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


@dataclass
class Prepared:
    """Texts tokenized and cut into forward rows under a context rule."""

    rows: list[list[tuple[list[int], int]]]  # per text: (row token ids, first scored position)
    ends: list[list[int]] | None  # per text: each token's end offset in the text (fast tokenizers)
    n_text_tokens: list[int]
    n_input: list[int]
    text_chars: list[int]

    def cost(self) -> list[int]:
        """Forward tokens per text (what the shard plan sorts by)."""
        return [sum(len(r) for r, _ in rows) for rows in self.rows]


# The last texts prepared, by what decides their rows: a reference model that shares the
# target's tokenizer (the usual case: one family) reuses the target's tokenization.
_LAST_PREPARED: list = []


def _prepared_key(target, texts: list[str], rule: str) -> tuple | None:
    tokenizer_hash = getattr(target, "tokenizer_hash", None)
    config = getattr(target, "config", None)
    if not isinstance(tokenizer_hash, str) or tokenizer_hash == "unknown" or not isinstance(config, dict):
        return None
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return (tokenizer_hash, config.get("model_type"), target.max_length, rule, digest.hexdigest())


def prepare(target, texts: list[str]) -> Prepared:
    """Tokenize ``texts`` and cut them into forward rows under the target's context rule (the
    previous call's result when the tokenizer files, model type, context and texts are the same)."""
    rule = getattr(target, "context_rule", CONTEXT_RULE)
    key = _prepared_key(target, texts, rule)
    if key is not None and _LAST_PREPARED and _LAST_PREPARED[0] == key:
        return _LAST_PREPARED[1]
    prepared = _prepare(target, texts, rule)
    if key is not None:
        _LAST_PREPARED[:] = [key, prepared]
    return prepared


def _prepare(target, texts: list[str], rule: str) -> Prepared:
    with profiling.phase("tokenization", target.id):
        ids, ends = encode(target.tokenizer, texts)
        rows, n_input, chars = [], [], []
        for i, (toks, text) in enumerate(zip(ids, texts)):
            windows = context_windows(len(toks), target.max_length, rule)
            rows.append([(toks[start:end], first - start) for start, end, first in windows])
            used = windows[-1][1]
            n_input.append(used)
            chars.append(len(text) if used == len(toks) else (ends[i][used - 1] if ends is not None and used else -1))
    return Prepared(rows=rows, ends=ends, n_text_tokens=[len(t) for t in ids], n_input=n_input, text_chars=chars)


def stats_for(target, prepared: Prepared, indices, *, budget: TokenBudget, counter: dict,
              progress: bool = False, desc: str = "forward pass") -> TokenStats:
    """Statistics of the texts at ``indices`` (in that order) from their prepared rows."""
    rows, first, owner = [], [], []
    for k, i in enumerate(indices):
        for row, start in prepared.rows[i]:
            rows.append(row)
            first.append(start)
            owner.append(k)
    device = target.input_device() if hasattr(target, "input_device") else target.device
    by_row = compute(target.model, rows, pad_id=pad_id(target.tokenizer), device=device, budget=budget,
                     counter=counter, progress=progress, desc=desc, score_from=first, label=target.id)
    # rows of one text are consecutive, so the text's tokens are already in place: only the
    # offsets change (to those of each text's first row)
    first_row = np.searchsorted(np.asarray(owner, np.int64), np.arange(len(indices) + 1))
    char_end = None
    if prepared.ends is not None:
        parts = [np.asarray(prepared.ends[i][1 : prepared.n_input[i]], np.int32) for i in indices]
        char_end = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    pick = lambda values: np.asarray([values[i] for i in indices], np.int64)  # noqa: E731
    return TokenStats(offsets=by_row.offsets[first_row].astype(np.int64), n_input_tokens=pick(prepared.n_input),
                      values=by_row.values, token_ids=by_row.token_ids, n_text_tokens=pick(prepared.n_text_tokens),
                      text_chars=pick(prepared.text_chars), char_end=char_end)


def text_stats(target, texts: list[str], *, batch_tokens: int = 16384, progress: bool = False,
               counter: dict | None = None, desc: str = "forward pass", before=None) -> TokenStats:
    """Token statistics of ``texts`` on ``target`` under its context rule (not cached).
    ``before(forward_tokens)`` is called once the texts are cut into rows and before any
    forward pass (a metered budget refuses there)."""
    counter = counter if counter is not None else {}
    prepared = prepare(target, list(texts))
    if before is not None:
        before(sum(prepared.cost()))
    budget = TokenBudget(batch_tokens, probe_for(target.device))
    return stats_for(target, prepared, range(len(prepared.rows)), budget=budget, counter=counter,
                     progress=progress, desc=desc)


def truncation_counts(truncated: np.ndarray, rule: str) -> dict:
    """A record's count of texts whose tokens were left unscored by the context rule
    (``truncated``: ``TokenStats.truncated()`` over the record's rows)."""
    return {"n_truncated": int(np.asarray(truncated).sum()), "context_rule": rule,
            "truncation_rule": "a text is truncated when the context rule leaves some of its tokens unscored "
            "(truncate-head: texts longer than the model context; sliding-window scores every token)"}


def get_features(
    target,
    split,
    *,
    batch_tokens: int = 16384,
    progress: bool = False,
    counter: dict | None = None,
    shard_size: int = SHARD_SAMPLES,
) -> TokenStats:
    """Token statistics for every sample of ``split`` (in its row order).

    Valid cached shards are reused; missing or corrupt ones are computed and written as each
    finishes, so an interrupted call resumes where it stopped. ``counter`` accumulates
    ``forward_passes``/``forward_tokens`` (zero on a full cache hit) and ``shards_cached``.
    A full cache hit reads the shards only: it needs neither the model nor the tokenizer.
    """
    counter = counter if counter is not None else {}
    parts = key_parts(target, split)
    key = cache.cache_key(parts)
    uids = split.samples["uid"].tolist()
    position = {u: i for i, u in enumerate(uids)}
    prepared = None
    meta = cache.read_meta(key)
    if meta is None or meta.get("n") != len(uids) or meta.get("shard_size") != shard_size:
        prepared = prepare(target, split.samples["text"].tolist())
        plan = shard_plan(prepared.cost(), shard_size)
        cache.reset(key)  # shards of another layout must never be mixed in
        cache.write_meta(key, parts, len(uids), shard_size, len(plan))
        meta = cache.read_meta(key)
    found: list[TokenStats] = []
    rows_of: list[int] = []  # split row of each found sample, in found order
    todo = []
    with profiling.phase("loading", target.id):  # reading the cached shards
        for index in range(meta["n_shards"]):
            stats, shard_uids, problem = cache.load_shard(key, index)
            if problem:
                log.warning(problem)
            if stats is None or any(u not in position for u in shard_uids):
                todo.append(index)
                continue
            found.append(stats)
            rows_of += [position[u] for u in shard_uids]
    counter["shards_cached"] = meta["n_shards"] - len(todo)
    if todo:
        from tqdm.auto import tqdm

        if prepared is None:
            prepared = prepare(target, split.samples["text"].tolist())
        plan = shard_plan(prepared.cost(), shard_size)
        budget = TokenBudget(batch_tokens, probe_for(target.device))
        bar = tqdm(total=sum(len(plan[i]) for i in todo), desc=f"features {target.id}",
                   disable=not progress, unit="text")
        for index in todo:
            members = plan[index]
            stats = stats_for(target, prepared, members, budget=budget, counter=counter)
            with profiling.phase("writing", target.id):
                cache.save_shard(key, index, stats, [uids[i] for i in members])
            found.append(stats)
            rows_of += list(members)
            bar.update(len(members))
        bar.close()
        counter["budget_tokens"] = budget.tokens
    if sorted(rows_of) != list(range(len(uids))):  # the cached layout no longer covers the split
        log.warning("feature cache %s does not cover the split's %d samples; recomputing", key[:12], len(uids))
        cache.reset(key)
        return get_features(target, split, batch_tokens=batch_tokens, progress=progress, counter=counter,
                            shard_size=shard_size)
    return TokenStats.concat(found).take(np.argsort(np.asarray(rows_of), kind="stable"))


__all__ = [
    "FEATURE_SET_VERSION",
    "SHARD_SAMPLES",
    "STATS",
    "TokenBudget",
    "TokenStats",
    "compute",
    "encode",
    "get_features",
    "key_parts",
    "pad_id",
    "plan_batches",
    "prepare",
    "shard_plan",
    "text_stats",
    "tokenize",
    "truncation_counts",
]
