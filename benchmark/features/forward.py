"""The batched forward pass: token rows -> per-token statistics.

For every scored token t (every token after the first input token of its row, or from the
row's ``score_from``) it records, from the fp32 log-softmax of the model's next-token
distribution p(.|x_<t), whatever the weight dtype:

- ``logprob``: l_t = log p(x_t | x_<t);
- ``mu``: E_{v~p}[log p(v)] (= -H_t, minus the entropy; ``TokenStats.sample`` also gives
  ``entropy`` = -mu, derived rather than stored);
- ``sigma``: sqrt(E_{v~p}[(log p(v) - mu)^2]) (two-pass, for fp32 accuracy);
- ``token_ids``: x_t itself (int32, for token-frequency attacks such as DC-PDD).

Rows are sorted by length (longest first) and batched under a token budget (rows x longest row
<= the budget; ``batching.TokenBudget`` adapts it to a GPU's free memory). Padding is right
(default) or left; positions are passed explicitly so that padding never moves a token, and
padding positions are masked out of every statistic. The vocabulary-sized fp32 tensors are
built for a bounded number of tokens at a time (``STATS_CHUNK_TOKENS``, fewer on a CPU); for
GPT-NeoX and OPT even the logits are made chunk by chunk from the hidden states
(``trunk_and_head``), so no [rows x tokens x vocab] tensor ever exists for more than one
chunk. Chunks are cut within a row, so they do not depend on the batch. On a GPU, inputs go through
pinned host memory with asynchronous copies, and the statistics come back the same way.

Which rows a text becomes (the context rule) is decided by ``benchmark.features`` with
``benchmark.targets.context``.

Out of memory: a batch that does not fit is halved (and every later batch is capped at that
number of rows), with a warning; a single row that does not fit is an error.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np

from .. import profiling
from ..api import TokenStats
from ..errors import MembenchError
from .batching import TokenBudget, probe_for

log = logging.getLogger(__name__)

FEATURE_SET_VERSION = "tokenstats-v4"
STATS_CHUNK_TOKENS = 1024
# On a CPU, vocabulary-sized temporaries of more than a few hundred tokens fall out of cache
# (measured: 1024-token chunks made the statistics 3-4x slower than 256 with vocabularies of
# 2,048 and 50,304); GPUs prefer the larger chunks.
CPU_STATS_CHUNK_TOKENS = 256
PADDING_SIDES = ("right", "left")


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text with the tokenizer's own special tokens, cut to ``max_length``."""
    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [list(ids[:max_length]) for ids in encoded]


def encode(tokenizer, texts: list[str]) -> tuple[list[list[int]], list[list[int]] | None]:
    """Token ids of each whole text (special tokens included) and, from a fast tokenizer, the
    character offset where each token ends (None from a tokenizer without offsets)."""
    texts = list(texts)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
        return [list(ids) for ids in enc["input_ids"]], [[int(e) for _, e in offs] for offs in enc["offset_mapping"]]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]], None


def next_batch(order: list[int], start: int, lengths, budget: int, max_rows: int | None = None) -> list[int]:
    """The batch that begins at ``order[start]``: rows while rows x the first (longest) row's
    length stays within ``budget`` (at least one row; at most ``max_rows``)."""
    width = max(lengths[order[start]], 1)
    rows = max(budget // width, 1)
    if max_rows is not None:
        rows = min(rows, max_rows)
    return order[start : start + rows]


def length_order(lengths) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


def plan_batches(lengths, batch_tokens: int, max_rows: int | None = None) -> list[list[int]]:
    """Indices sorted longest first, grouped so that rows x longest row <= batch_tokens
    (and, when given, rows <= max_rows)."""
    order, batches, at = length_order(lengths), [], 0
    while at < len(order):
        batches.append(next_batch(order, at, lengths, batch_tokens, max_rows))
        at += len(batches[-1])
    return batches


def _accepts_position_ids(model) -> bool:
    try:
        return "position_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


# Architectures whose logits are exactly output_embeddings(base_model(...).last_hidden_state):
# for them the head is applied chunk by chunk, so a batch's full [rows x width x vocab] logits
# never exist (2.5 GB in fp32 for 12,500 Pythia tokens).
CHUNKED_HEAD_MODEL_TYPES = ("gpt_neox", "opt")


def trunk_and_head(model):
    """(trunk, head) when logits can be computed chunk by chunk from hidden states, else None."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in CHUNKED_HEAD_MODEL_TYPES:
        return None
    trunk = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if trunk is None or trunk is model or head is None:
        return None
    return trunk, head


def batch_stats(model, input_ids, attention_mask, score_from=None, label: str | None = None) -> list[dict[str, np.ndarray]]:
    """Statistics for one padded batch (right or left); returns one dict of arrays per row.

    ``score_from`` (one int per row, default 1): the first position of the row (counted from its
    first real token) whose token is scored; earlier tokens are context only."""
    import torch

    sync = _syncer(input_ids.device)
    kwargs = {}
    if _accepts_position_ids(model):
        kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    spans = scored_spans(attention_mask, score_from)
    step = STATS_CHUNK_TOKENS if input_ids.device.type == "cuda" else min(STATS_CHUNK_TOKENS, CPU_STATS_CHUNK_TOKENS)
    chunks, targets = [], []
    with torch.no_grad():
        split = trunk_and_head(model)
        with profiling.phase("forward", label, sync):
            if split is not None:
                trunk, head = split
                pred = trunk(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
            else:
                head = None
                pred = model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits
        for row in range(input_ids.shape[0]):
            # Only scored positions reach the vocabulary-sized work (padding costs nothing), in
            # chunks cut within the row, so every matrix product has the shape it has at batch
            # size 1 and the statistics do not move with the batch.
            lo, hi = spans[row]
            rows_pred = pred[row, lo:hi]  # views: no copy, and no device sync per row
            target = input_ids[row, lo + 1 : hi + 1]
            targets.append(target)
            for lo in range(0, len(target), step):
                chunk = rows_pred[lo : lo + step]
                if head is not None:
                    with profiling.phase("forward", label, sync):
                        chunk = head(chunk)
                chunks.append(_chunk_stats(chunk, target[lo : lo + step]))
    # One device-to-host copy per statistic for the whole batch, then split by row.
    empty = torch.zeros(0, device=input_ids.device)
    lp, mu, sigma, ids = _to_host(
        [torch.cat([c[i] for c in chunks]) if chunks else empty for i in range(3)]
        + [torch.cat(targets).to(torch.int32)])
    bounds = np.cumsum([0] + [len(t) for t in targets])
    return [{"logprob": lp[lo:hi], "mu": mu[lo:hi], "sigma": sigma[lo:hi], "token_id": ids[lo:hi]}
            for lo, hi in zip(bounds[:-1], bounds[1:])]


def scored_spans(attention_mask, score_from=None) -> list[tuple[int, int]]:
    """Per row, the prediction indices [lo, hi) that are scored: prediction j (made at input j)
    is of input j + 1, which must be a real token at row position >= score_from (default 1),
    with position 0 the row's first real token. Rows are contiguous (right or left padding);
    worked out on the host, one transfer per batch."""
    mask = attention_mask.detach().to("cpu")
    n = mask.sum(-1).tolist()
    start = mask.argmax(-1).tolist()  # first real column (the first maximum)
    first = score_from if score_from is not None else [1] * len(n)
    return [(a + max(f, 1) - 1, a + k - 1) if k > max(f, 1) else (0, 0) for a, k, f in zip(start, n, first)]


def _chunk_stats(logits, target):
    """(log p of the actual token, mu, sigma) for a chunk of positions, from fp32 log-softmax."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)  # a new tensor: the in-place steps below are safe
    token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    # Two-pass variance: E[(log p - mu)^2]. The one-pass E[x^2] - mu^2 loses ~3 digits to
    # cancellation in fp32 when the distribution is flat. Worked in place in logp's storage:
    # the same operations in the same order as (p * (logp - mu)^2).sum(), bit for bit, with
    # two vocabulary-sized temporaries fewer (3x faster on a CPU).
    sigma = logp.sub_(mu.unsqueeze(-1)).square_().mul_(p).sum(-1).sqrt_()
    return token_lp, mu, sigma


def _syncer(device):
    """``torch.cuda.synchronize`` on a CUDA device (so a profile charges kernels to their phase)."""
    if getattr(device, "type", str(device).split(":")[0]) != "cuda":
        return None
    import torch

    return lambda: torch.cuda.synchronize(device)


def _to_host(tensors) -> list[np.ndarray]:
    """Tensors as numpy arrays; from a GPU through pinned buffers with asynchronous copies and
    one synchronization for all of them."""
    import torch

    if not tensors or tensors[0].device.type != "cuda":
        return [t.numpy() for t in tensors]
    host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
    for h, t in zip(host, tensors):
        h.copy_(t, non_blocking=True)
    torch.cuda.current_stream(tensors[0].device).synchronize()
    return [h.numpy() for h in host]


def _to_device(tensor, device):
    """A host tensor on ``device``; pinned and copied asynchronously to a GPU."""
    if str(device).startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def pad_batch(token_ids, batch, pad_id: int, padding_side: str = "right"):
    import torch

    lengths = [len(token_ids[i]) for i in batch]
    width = max(max(lengths), 1)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        n = lengths[row]
        if not n:
            continue
        sl = slice(0, n) if padding_side == "right" else slice(width - n, width)
        ids[row, sl] = torch.tensor(token_ids[i], dtype=torch.long)
        mask[row, sl] = 1
    return ids, mask


def compute(
    model,
    token_ids: list[list[int]],
    *,
    pad_id: int,
    device: str = "cpu",
    batch_tokens: int = 16384,
    progress: bool = False,
    counter: dict | None = None,
    padding_side: str = "right",
    max_rows: int | None = None,
    desc: str = "forward pass",
    score_from: list[int] | None = None,
    budget: TokenBudget | None = None,
    label: str | None = None,
) -> TokenStats:
    """Run the batched pass over pre-tokenized rows and gather statistics in input order.

    ``score_from[i]``: the first scored position of row i (default 1: every token after the
    first). ``budget``: a ``TokenBudget`` shared across calls (default: ``batch_tokens``, grown to
    the free memory on a GPU). ``counter`` (a dict) accumulates ``forward_passes``,
    ``forward_tokens`` (real tokens) and ``oom_halvings``. A batch that runs out of memory is
    halved and retried. ``label`` names the model in a profile.
    """
    from tqdm.auto import tqdm

    if padding_side not in PADDING_SIDES:
        raise MembenchError(f"unknown padding side '{padding_side}'; valid choices: right, left")
    counter = counter if counter is not None else {}
    if budget is None:
        budget = TokenBudget(batch_tokens, probe_for(device), max_rows=max_rows)
    lengths = [len(ids) for ids in token_ids]
    results: list[dict | None] = [None] * len(token_ids)
    order, at = length_order(lengths), 0
    bar = tqdm(total=len(token_ids), desc=desc, disable=not progress, unit="text")
    while at < len(order):
        with profiling.phase("statistics", label):  # batching, padding and copies
            batch = next_batch(order, at, lengths, budget.tokens, budget.max_rows)
            ids, mask = pad_batch(token_ids, batch, pad_id, padding_side)
            first = None if score_from is None else [score_from[i] for i in batch]
            budget.before_batch()
            try:
                stats = batch_stats(model, _to_device(ids, device), _to_device(mask, device), first, label)
            except (RuntimeError, MemoryError) as exc:
                if not is_oom(exc):
                    raise
                if len(batch) == 1:
                    raise MembenchError(
                        f"one text of {lengths[batch[0]]} tokens does not fit in memory on {device}",
                        "use a larger device, --dtype bfloat16, or a target with a shorter context",
                    ) from None
                _free(device)
                budget.halve(len(batch), len(batch) * max(lengths[batch[0]], 1))
                counter["oom_halvings"] = counter.get("oom_halvings", 0) + 1
                log.warning("out of memory on a batch of %d rows; halving to %d rows (%d tokens) and carrying on",
                            len(batch), budget.max_rows, budget.tokens)
                continue
            budget.after_batch(int(ids.numel()))
        counter["forward_passes"] = counter.get("forward_passes", 0) + 1
        counter["forward_tokens"] = counter.get("forward_tokens", 0) + int(mask.sum())
        for i, s in zip(batch, stats):
            results[i] = s
        at += len(batch)
        bar.update(len(batch))
    bar.close()
    counter["max_rows"] = budget.max_rows
    counter["budget_tokens"] = budget.tokens
    return TokenStats.from_lists(results, lengths)


def _free(device: str) -> None:
    import gc

    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
