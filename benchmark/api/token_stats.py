"""``TokenStats``: the per-token statistics of many texts (the cached feature pass), stored flat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATS = ("logprob", "mu", "sigma")
# Kept for scorers that read it, derived on the fly: entropy H_t = -mu_t (tokenstats-v3 stored
# it as a fourth array, identical to -mu; v4 dropped the copy).
DERIVED = ("entropy",)


@dataclass
class TokenStats:
    """Per-token statistics of many texts, stored flat with offsets.

    Sample i's values are ``values[name][offsets[i]:offsets[i + 1]]``; ``n_input_tokens[i]``
    counts the tokens of the text that were model input (all of them under ``sliding-window``;
    at most the context under ``truncate-head``); scored tokens are one fewer, or zero.
    ``token_ids`` (int32, same layout) holds the scored tokens themselves. Filled by the
    feature pass over texts (``None`` for statistics of bare token ids):

    - ``n_text_tokens`` (per sample): tokens of the whole text; more than ``n_input_tokens``
      means the text was truncated;
    - ``text_chars`` (per sample): characters of the text that its input tokens cover (the part
      that was scored; the whole length when nothing was cut; -1 when unknown);
    - ``char_end`` (per scored token): the character offset where that token ends in the text
      (-1 when the tokenizer gives no offsets).
    """

    offsets: np.ndarray  # int64, len n + 1
    n_input_tokens: np.ndarray  # int64, len n
    values: dict[str, np.ndarray]  # float32 arrays, each of len offsets[-1]
    token_ids: np.ndarray | None = None  # int32, len offsets[-1]
    n_text_tokens: np.ndarray | None = None  # int64, len n
    text_chars: np.ndarray | None = None  # int64, len n
    char_end: np.ndarray | None = None  # int32, len offsets[-1]

    def __len__(self) -> int:
        return len(self.n_input_tokens)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        out = {name: arr[lo:hi] for name, arr in self.values.items()}
        if "mu" in out:
            out["entropy"] = -out["mu"]
        if self.token_ids is not None:
            out["token_id"] = self.token_ids[lo:hi]
        if self.char_end is not None:
            out["char_end"] = self.char_end[lo:hi]
        return out

    @property
    def entropy(self) -> np.ndarray:
        """H_t = -sum_v p(v) log p(v) = -mu_t, for every scored token."""
        return -self.values["mu"]

    def n_scored(self) -> np.ndarray:
        return np.diff(self.offsets)

    def truncated(self) -> np.ndarray:
        """Per sample: True when tokens of the text were left unscored by the context rule."""
        if self.n_text_tokens is None:
            return np.zeros(len(self), bool)
        return self.n_text_tokens > self.n_input_tokens

    def scored_text(self, i: int, text: str) -> str:
        """The part of ``text`` its input tokens cover (the whole text when nothing was cut)."""
        if self.text_chars is None or self.text_chars[i] < 0:
            return text
        return text[: int(self.text_chars[i])]

    def take(self, order) -> "TokenStats":
        """The samples at ``order`` (indices), in that order."""
        order = np.asarray(order, np.int64)
        lengths = self.n_scored()[order]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        index = np.repeat(self.offsets[:-1][order] - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        pick = (lambda a: None if a is None else a[order])
        flat = (lambda a: None if a is None else a[index])
        return TokenStats(offsets=offsets, n_input_tokens=self.n_input_tokens[order],
                          values={k: v[index] for k, v in self.values.items()}, token_ids=flat(self.token_ids),
                          n_text_tokens=pick(self.n_text_tokens), text_chars=pick(self.text_chars),
                          char_end=flat(self.char_end))

    @classmethod
    def concat(cls, parts: list["TokenStats"]) -> "TokenStats":
        """Samples of several TokenStats one after another (optional arrays kept when all have them)."""
        if not parts:
            return cls.from_lists([], [])
        lengths = np.concatenate([p.n_scored() for p in parts])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

        def cat(name):
            arrays = [getattr(p, name) for p in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        return cls(offsets=offsets, n_input_tokens=cat("n_input_tokens"),
                   values={k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values},
                   token_ids=cat("token_ids"), n_text_tokens=cat("n_text_tokens"), text_chars=cat("text_chars"),
                   char_end=cat("char_end"))

    @classmethod
    def from_lists(cls, per_sample: list[dict[str, np.ndarray]], n_input: list[int], *, n_text_tokens=None,
                   text_chars=None):
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

        def flat(key, dtype):
            if per_sample and all(key in s for s in per_sample):
                return np.concatenate([s[key] for s in per_sample]).astype(dtype)
            return np.zeros(0, dtype) if not per_sample else None

        return cls(offsets=offsets, n_input_tokens=np.asarray(n_input, np.int64), values=values,
                   token_ids=flat("token_id", np.int32),
                   n_text_tokens=None if n_text_tokens is None else np.asarray(n_text_tokens, np.int64),
                   text_chars=None if text_chars is None else np.asarray(text_chars, np.int64),
                   char_end=flat("char_end", np.int32) if per_sample and all("char_end" in s for s in per_sample)
                   else None)
