"""DC-PDD (Zhang et al. 2024, "Pretraining data detection for LLMs: a divergence-based
calibration method").

For the scored tokens x_t of x, keep only the first occurrence of each token id (FOS(x)), and
with p_t = exp(l_t) the target's probability of x_t and f(v) the token's frequency in a
reference corpus with add-one smoothing, f(v) = (c(v) + 1) / (sum_u c(u) + |V|):

    alpha_t = p_t * log(1 / f(x_t)),        score(x) = (1/|FOS(x)|) sum_{t in FOS(x)} min(alpha_t, a)

with the upper bound a = 0.01 by default (the authors' released setting). A member makes the
target confident on tokens that are rare in general text: higher = member. The frequency
table comes from a declared non-member corpus (``ScoringInput.pool``), tokenized with the
target's tokenizer; membench caches it under ``MEMBENCH_HOME/freq`` keyed by the tokenizer
hash and the corpus content. Needs only the cached features (incl. token ids).
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from ..hashing import sha256_json
from ..home import cache_dir
from .pool import checked_pool


def token_counts(access, corpus: list[str], vocab_size: int, cache_tag: str | None = None) -> np.ndarray:
    """Token counts of ``corpus`` under the target tokenizer (cached when ``cache_tag``)."""
    path = None
    if cache_tag is not None:
        path = cache_dir("freq") / f"{sha256_json([cache_tag, vocab_size, corpus])}.npy"
        if path.exists():
            counts = np.load(path)
            if counts.shape == (vocab_size,):
                return counts
    counts = np.zeros(vocab_size, np.int64)
    for ids in access.tokenize(corpus):
        ids = np.asarray(ids, np.int64)
        np.add.at(counts, ids[ids < vocab_size], 1)
    if path is not None:
        np.save(path, counts)
    return counts


def smoothed_frequency(counts: np.ndarray) -> np.ndarray:
    return (counts + 1.0) / (counts.sum() + len(counts))


def dcpdd_scores(stats, freq: np.ndarray, a: float) -> np.ndarray:
    """Every text's score at once: the first occurrence of each (text, token id) pair over the
    flat token array, then per-text means of the clipped alphas; NaN where nothing was scored."""
    n = len(stats)
    sample = np.repeat(np.arange(n, dtype=np.int64), stats.n_scored())
    ids = stats.token_ids.astype(np.int64)
    _, first = np.unique(sample * (int(ids.max(initial=0)) + 1) + ids, return_index=True)
    alpha = np.exp(stats.values["logprob"][first].astype(np.float64)) * -np.log(freq[ids[first]])
    sums = np.bincount(sample[first], weights=np.minimum(alpha, a), minlength=n)
    counts = np.bincount(sample[first], minlength=n)
    out = np.full(n, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


class DCPDD(Scorer):
    name = "dc_pdd"
    title = "DC-PDD"
    method = "dc_pdd"
    citation = "Zhang et al. 2024, EMNLP 2024 (arXiv 2409.14781)"
    default_set = "features"
    requires = ("features",)
    needs_pool = True

    def __init__(self, a: float = 0.01):
        if a <= 0:
            raise ValueError(f"a must be positive, got {a}")
        self.a = float(a)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        corpus = checked_pool(inputs, self.name)
        feats = inputs.features
        if feats.token_ids is None:
            raise MembenchError(
                "dc_pdd needs the scored token ids in the features, and these features have none",
                "recompute features with feature set tokenstats-v3 or later (membench run does)",
            )
        vocab = int(feats.token_ids.max()) + 1 if len(feats.token_ids) else 1
        access = inputs.access
        vocab = max(vocab, int(getattr(access, "vocab_size", 0) or 0))
        counts = token_counts(access, corpus, vocab, getattr(access, "tokenizer_tag", None))
        freq = smoothed_frequency(counts)
        self.details = {"corpus_texts": len(corpus), "corpus_tokens": int(counts.sum())}
        return dcpdd_scores(feats, freq, self.a)
