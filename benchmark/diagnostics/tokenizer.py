"""The tokenizer baseline (``blind_tokenizer``): what a target's tokenizer alone says about
membership, without running the model.

A tokenizer fitted on a split's members (byte-level BPE trained on the training set, as the
demo target's once was) has learned the members' own words and phrases as merges, so member
texts come out in fewer, longer tokens than non-members, use more of the latest (rarest)
merges, and fall back to spelling words out less often. Any scorer that counts tokens then
gets that signal for free, beside the model's. This baseline measures it: the features below
are computed from the tokenizer and the text only (no labels: the same for every fold), and a
standardized logistic regression is fit on them out of fold, on the split's own folds (grouped
where the split has groups), like every other blind baseline.

Features of a text, tokenized without special tokens:

- ``chars_per_token``: characters / tokens (tokenization efficiency);
- ``tokens_per_word``: tokens / whitespace-separated words;
- ``unknown_rate``: share of tokens that are the tokenizer's unknown token (0 for byte-level
  BPE, which has none);
- ``single_char_rate``: share of tokens that stand for at most one non-space character (a word
  the vocabulary never learned, spelled out);
- ``late_merge_rate``: share of tokens in the last quarter of the vocabulary by id (BPE ids
  follow merge order, so these are the rarest merges of the tokenizer's own training text,
  which a tokenizer fitted on members spends on the members' words);
- ``mean_id_rank``: mean token id over the vocabulary size (the same order, averaged);
- ``whole_word_rate``: share of the text's words (four letters or more) that are one token
  after a space (words the tokenizer learned whole);
- ``rare_word_pieces``: mean tokens per word over the text's rare words (in at most two of
  the diagnosed texts: a tokenizer fitted on members learned the members' rare words).

It is keyed by split and tokenizer: one entry per tokenizer hash (``target.tokenizer_hash``:
SHA-256 of the tokenizer files) in the split's diagnostics JSON, under ``tokenizer_baselines``
(see ``report``); targets that share a tokenizer (every Pythia size) share the entry. A target
whose tokenizer was not fitted on the split's texts sits at chance.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import metrics

NAME = "blind_tokenizer"
DESCRIPTION = ("the target's tokenizer alone: characters per token, tokens per word, unknown-token, "
               "single-character and late-merge rates, mean id rank, whole-word rate, pieces per rare "
               "word; standardized logistic regression")
FEATURES = ("chars_per_token", "tokens_per_word", "unknown_rate", "single_char_rate", "late_merge_rate",
            "mean_id_rank", "whole_word_rate", "rare_word_pieces")
LATE_MERGES = 0.75  # ids from this fraction of the vocabulary on count as late (rare) merges
WORD = re.compile(r"[^\W\d_]{4,}")  # a word, for the word features: four letters or more
RARE_DF = 2  # a word in at most this many of the diagnosed texts is rare


@dataclass(frozen=True)
class TargetTokenizer:
    """A tokenizer to test: the tokenizer object, its hash (the key), the targets that ship it."""

    sha256: str
    tokenizer: object
    targets: tuple[str, ...] = ()


def _piece_lengths(tokenizer, ids: np.ndarray) -> dict[int, int]:
    """Characters of text each token id stands for (spaces excluded), for the ids given."""
    texts = tokenizer.batch_decode([[int(i)] for i in ids], clean_up_tokenization_spaces=False)
    return {int(i): len(t.strip()) for i, t in zip(ids, texts)}


def _word_pieces(tokenizer, words) -> dict[str, int]:
    """Tokens each word takes after a space (as inside running text)."""
    words = sorted(words)
    encoded = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"] if words else []
    return {w: len(e) for w, e in zip(words, encoded)}


def features(tokenizer, texts) -> np.ndarray:
    """One row of ``FEATURES`` per text (no labels involved: the document frequencies that
    make a word rare are counted over ``texts`` themselves)."""
    texts = [str(t) for t in texts]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    seen = np.unique(np.fromiter((i for ids in encoded for i in ids), dtype=np.int64))
    pieces = _piece_lengths(tokenizer, seen)
    vocab = max(len(tokenizer), int(seen.max()) + 1 if len(seen) else 1)
    unk = getattr(tokenizer, "unk_token_id", None)
    words = [WORD.findall(t) for t in texts]
    df = Counter(w for ws in words for w in set(ws))
    word_pieces = _word_pieces(tokenizer, df)
    rows = []
    for text, ids, ws in zip(texts, encoded, words):
        ids = np.asarray(ids, dtype=np.int64)
        n = max(len(ids), 1)
        lengths = np.array([pieces[int(i)] for i in ids]) if len(ids) else np.zeros(1)
        per_word = np.array([word_pieces[w] for w in ws], dtype=float)
        rare = np.array([word_pieces[w] for w in ws if df[w] <= RARE_DF], dtype=float)
        rows.append([
            len(text) / n,
            len(ids) / max(len(text.split()), 1),
            float(np.sum(ids == unk)) / n if unk is not None else 0.0,
            float(np.sum(lengths <= 1)) / n if len(ids) else 0.0,
            float(np.sum(ids >= LATE_MERGES * vocab)) / n,
            float(np.mean(ids)) / vocab if len(ids) else 0.0,
            float(np.mean(per_word == 1)) if len(per_word) else np.nan,
            float(np.mean(rare)) if len(rare) else np.nan,
        ])
    matrix = np.asarray(rows, dtype=float)
    for j in range(matrix.shape[1]):  # a text without words (or rare words): the column's median
        col = matrix[:, j]
        col[~np.isfinite(col)] = np.nanmedian(col) if np.isfinite(col).any() else 0.0
    return matrix


def classifier():
    """Unfitted: standardized tokenizer features -> logistic regression (P(member))."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def feature_aucs(matrix: np.ndarray, labels) -> dict:
    """Each feature's own AUC as a score (in sample; higher = member), to say which one leaks."""
    labels = np.asarray(labels).astype(int)
    return {name: metrics.auc(labels, matrix[:, j]) for j, name in enumerate(FEATURES)}


__all__ = ["DESCRIPTION", "FEATURES", "NAME", "TargetTokenizer", "classifier", "feature_aucs", "features"]
