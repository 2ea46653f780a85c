"""The batched forward pass: texts -> per-token statistics.

For every scored token t (every token after the first input token) it records, from the fp32
log-softmax of the model's next-token distribution p(.|x_<t):

- ``logprob``: l_t = log p(x_t | x_<t);
- ``entropy``: H_t = -sum_v p(v) log p(v);
- ``mu``: E_{v~p}[log p(v)] (= -H_t; kept by name for Min-K%++);
- ``sigma``: sqrt(E_{v~p}[(log p(v) - mu)^2]) (two-pass, for fp32 accuracy).

Texts are tokenized with the target's tokenizer, truncated to the model context
(``truncate-head``), sorted by length (longest first) and batched under a token budget with
right padding; padding positions are masked out and never reach a statistic. Only one batch's
[batch x tokens x vocab] tensor exists at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATS = ("logprob", "entropy", "mu", "sigma")
FEATURE_SET_VERSION = "tokenstats-v2"


@dataclass
class TokenStats:
    """Per-token statistics of many texts, stored flat with offsets.

    Sample i's values are ``values[name][offsets[i]:offsets[i + 1]]``; ``n_input_tokens[i]``
    counts its input tokens after truncation (scored tokens are one fewer, or zero).
    """

    offsets: np.ndarray  # int64, len n + 1
    n_input_tokens: np.ndarray  # int64, len n
    values: dict[str, np.ndarray]  # float32 arrays, each of len offsets[-1]

    def __len__(self) -> int:
        return len(self.n_input_tokens)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        return {name: arr[lo:hi] for name, arr in self.values.items()}

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
        return cls(offsets=offsets, n_input_tokens=np.asarray(n_input, np.int64), values=values)


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text with the tokenizer's own special tokens, cut to ``max_length``."""
    encoded = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [ids[:max_length] for ids in encoded]


def plan_batches(lengths, batch_tokens: int) -> list[list[int]]:
    """Indices sorted longest first, grouped so that rows x longest row <= batch_tokens."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches, current = [], []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * max(width, 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def batch_stats(model, input_ids, attention_mask) -> list[dict[str, np.ndarray]]:
    """Statistics for one right-padded batch; returns one dict of arrays per row."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        target = input_ids[:, 1:]
        token_lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        p = logp.exp()
        mu = (p * logp).sum(-1)
        # Two-pass variance: E[(log p - mu)^2]. The one-pass E[x^2] - mu^2 loses ~3 digits
        # to cancellation in fp32 when the distribution is flat.
        sigma = (p * (logp - mu.unsqueeze(-1)).square()).sum(-1).sqrt()
        del logits, logp, p
    n_tokens = attention_mask.sum(1).tolist()
    out = []
    for row, n in enumerate(n_tokens):
        k = max(int(n) - 1, 0)
        out.append(
            {
                "logprob": token_lp[row, :k].cpu().numpy(),
                "entropy": (-mu[row, :k]).cpu().numpy(),
                "mu": mu[row, :k].cpu().numpy(),
                "sigma": sigma[row, :k].cpu().numpy(),
            }
        )
    return out


def compute(
    model,
    token_ids: list[list[int]],
    *,
    pad_id: int,
    device: str = "cpu",
    batch_tokens: int = 16384,
    progress: bool = False,
    counter: dict | None = None,
) -> TokenStats:
    """Run the batched pass over pre-tokenized texts and gather statistics in input order."""
    import torch
    from tqdm.auto import tqdm

    lengths = [len(ids) for ids in token_ids]
    results: list[dict | None] = [None] * len(token_ids)
    batches = plan_batches(lengths, batch_tokens)
    for batch in tqdm(batches, desc="forward pass", disable=not progress, unit="batch"):
        width = max(max(lengths[i] for i in batch), 1)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids[row, : lengths[i]] = torch.tensor(token_ids[i], dtype=torch.long)
            mask[row, : lengths[i]] = 1
        stats = batch_stats(model, ids.to(device), mask.to(device))
        if counter is not None:
            counter["forward_passes"] = counter.get("forward_passes", 0) + 1
            counter["forward_tokens"] = counter.get("forward_tokens", 0) + int(mask.sum())
        for i, s in zip(batch, stats):
            results[i] = s
    return TokenStats.from_lists(results, lengths)
