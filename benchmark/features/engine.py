"""The batched forward pass: texts -> per-token statistics.

For every scored token t (every token after the first input token) it records, from the fp32
log-softmax of the model's next-token distribution p(.|x_<t), whatever the weight dtype:

- ``logprob``: l_t = log p(x_t | x_<t);
- ``entropy``: H_t = -sum_v p(v) log p(v);
- ``mu``: E_{v~p}[log p(v)] (= -H_t; kept by name for Min-K%++);
- ``sigma``: sqrt(E_{v~p}[(log p(v) - mu)^2]) (two-pass, for fp32 accuracy);
- ``token_ids``: x_t itself (int32, for token-frequency attacks such as DC-PDD).

Texts are tokenized with the target's tokenizer, truncated to the model context
(``truncate-head``: the first ``max_length`` tokens are kept), sorted by length (longest
first) and batched under a token budget (rows x longest row <= ``batch_tokens``). Padding is
right (default) or left; positions are passed explicitly so that padding never moves a token,
and padding positions are masked out of every statistic. The vocabulary-sized fp32 tensors
are built for a bounded number of tokens at a time (``STATS_CHUNK_TOKENS``); for GPT-NeoX and
OPT even the logits are made chunk by chunk from the hidden states (``trunk_and_head``), so no
[rows x tokens x vocab] tensor ever exists for more than one chunk.

Out of memory: a batch that does not fit is halved (and every later batch is capped at that
number of rows), with a warning; a single row that does not fit is an error.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import MembenchError

log = logging.getLogger(__name__)

STATS = ("logprob", "entropy", "mu", "sigma")
FEATURE_SET_VERSION = "tokenstats-v3"
STATS_CHUNK_TOKENS = 1024
PADDING_SIDES = ("right", "left")


@dataclass
class TokenStats:
    """Per-token statistics of many texts, stored flat with offsets.

    Sample i's values are ``values[name][offsets[i]:offsets[i + 1]]``; ``n_input_tokens[i]``
    counts its input tokens after truncation (scored tokens are one fewer, or zero).
    ``token_ids`` (int32, same layout) holds the scored tokens themselves.
    """

    offsets: np.ndarray  # int64, len n + 1
    n_input_tokens: np.ndarray  # int64, len n
    values: dict[str, np.ndarray]  # float32 arrays, each of len offsets[-1]
    token_ids: np.ndarray | None = None  # int32, len offsets[-1]

    def __len__(self) -> int:
        return len(self.n_input_tokens)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        out = {name: arr[lo:hi] for name, arr in self.values.items()}
        if self.token_ids is not None:
            out["token_id"] = self.token_ids[lo:hi]
        return out

    def n_scored(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_lists(cls, per_sample: list[dict[str, np.ndarray]], n_input: list[int]):
        lengths = [len(s["logprob"]) for s in per_sample]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = {
            name: (
                np.concatenate([s[name] for s in per_sample]).astype(np.float32)
                if per_sample
                else np.zeros(0, np.float32)
            )
            for name in STATS
        }
        token_ids = None
        if per_sample and all("token_id" in s for s in per_sample):
            token_ids = np.concatenate([s["token_id"] for s in per_sample]).astype(np.int32)
        elif not per_sample:
            token_ids = np.zeros(0, np.int32)
        return cls(offsets=offsets, n_input_tokens=np.asarray(n_input, np.int64), values=values,
                   token_ids=token_ids)


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text with the tokenizer's own special tokens, cut to ``max_length``."""
    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [list(ids[:max_length]) for ids in encoded]


def plan_batches(lengths, batch_tokens: int, max_rows: int | None = None) -> list[list[int]]:
    """Indices sorted longest first, grouped so that rows x longest row <= batch_tokens
    (and, when given, rows <= max_rows)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches, current = [], []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        full = (len(current) + 1) * max(width, 1) > batch_tokens
        if current and (full or (max_rows is not None and len(current) >= max_rows)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
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


def batch_stats(model, input_ids, attention_mask) -> list[dict[str, np.ndarray]]:
    """Statistics for one padded batch (right or left); returns one dict of arrays per row."""
    import torch

    kwargs = {}
    if _accepts_position_ids(model):
        kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    # A scored position j (predicting input j + 1) counts when both j and j + 1 are real.
    keep = (attention_mask[:, :-1] & attention_mask[:, 1:]).bool()
    chunks, targets = [], []
    with torch.no_grad():
        split = trunk_and_head(model)
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
            rows_pred = pred[row, :-1][keep[row]]
            target = input_ids[row, 1:][keep[row]]
            targets.append(target)
            chunks += [_chunk_stats(rows_pred[lo : lo + STATS_CHUNK_TOKENS], target[lo : lo + STATS_CHUNK_TOKENS], head)
                       for lo in range(0, len(target), STATS_CHUNK_TOKENS)]
    # One device-to-host copy per statistic for the whole batch, then split by row.
    lp, mu, sigma = (torch.cat([c[i] for c in chunks]).cpu().numpy() if chunks else np.zeros(0, np.float32)
                     for i in range(3))
    ids = torch.cat(targets).cpu().numpy().astype(np.int32)
    bounds = np.cumsum([0] + [len(t) for t in targets])
    return [{"logprob": lp[lo:hi], "entropy": -mu[lo:hi], "mu": mu[lo:hi], "sigma": sigma[lo:hi],
             "token_id": ids[lo:hi]} for lo, hi in zip(bounds[:-1], bounds[1:])]


def _chunk_stats(pred, target, head):
    """(log p of the actual token, mu, sigma) for a chunk of positions, from fp32 log-softmax."""
    import torch

    logits = head(pred) if head is not None else pred
    logp = torch.log_softmax(logits.float(), dim=-1)
    token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    p = logp.exp()
    mu = (p * logp).sum(-1)
    # Two-pass variance: E[(log p - mu)^2]. The one-pass E[x^2] - mu^2 loses ~3 digits to
    # cancellation in fp32 when the distribution is flat.
    sigma = (p * (logp - mu.unsqueeze(-1)).square()).sum(-1).sqrt()
    return token_lp, mu, sigma


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
) -> TokenStats:
    """Run the batched pass over pre-tokenized texts and gather statistics in input order.

    ``counter`` (a dict) accumulates ``forward_passes``, ``forward_tokens`` and
    ``oom_halvings``. A batch that runs out of memory is halved and retried.
    """
    from tqdm.auto import tqdm

    if padding_side not in PADDING_SIDES:
        raise MembenchError(f"unknown padding side '{padding_side}'; valid choices: right, left")
    counter = counter if counter is not None else {}
    lengths = [len(ids) for ids in token_ids]
    results: list[dict | None] = [None] * len(token_ids)
    queue = plan_batches(lengths, batch_tokens, max_rows)
    bar = tqdm(total=len(token_ids), desc=desc, disable=not progress, unit="text")
    while queue:
        batch = queue.pop(0)
        if max_rows is not None and len(batch) > max_rows:
            queue[:0] = [batch[i : i + max_rows] for i in range(0, len(batch), max_rows)]
            continue
        ids, mask = pad_batch(token_ids, batch, pad_id, padding_side)
        try:
            stats = batch_stats(model, ids.to(device), mask.to(device))
        except (RuntimeError, MemoryError) as exc:
            if not is_oom(exc):
                raise
            if len(batch) == 1:
                raise MembenchError(
                    f"one text of {lengths[batch[0]]} tokens does not fit in memory on {device}",
                    "use a larger device, --dtype bfloat16, or a target with a shorter context",
                ) from None
            _free(device)
            max_rows = max(1, len(batch) // 2)
            counter["oom_halvings"] = counter.get("oom_halvings", 0) + 1
            log.warning("out of memory on a batch of %d rows; halving to %d and carrying on",
                        len(batch), max_rows)
            queue.insert(0, batch)
            continue
        counter["forward_passes"] = counter.get("forward_passes", 0) + 1
        counter["forward_tokens"] = counter.get("forward_tokens", 0) + int(mask.sum())
        for i, s in zip(batch, stats):
            results[i] = s
        bar.update(len(batch))
    bar.close()
    counter["max_rows"] = max_rows
    return TokenStats.from_lists(results, lengths)


def _free(device: str) -> None:
    import gc

    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
