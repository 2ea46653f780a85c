"""Greedy character n-gram selection (after Das et al. 2024, "blind baselines").

On the training folds only: count, for every character n-gram (lengths 5-7 by default, kept
when it occurs in at least ``min_df`` training texts), the share of member and of non-member
texts that contain it (document frequency, Laplace-smoothed). Then, for each class in turn,
greedily pick the n-gram that covers the most not-yet-covered texts of that class among
those at least ``min_ratio`` times more frequent there than in the other class, until
``max_ngrams`` are chosen or no candidate covers ``min_df`` new texts. A text's score is the
summed log frequency ratio of the member-side n-grams it contains minus that of the
non-member side, squashed to (0, 1). A marker string present in one class is found at once.
Scoring needs only the selected n-grams, so it is a plain substring test per n-gram. On
large splits the selection uses a seeded, class-stratified sample of at most
``max_train_texts`` training texts.

The n-grams are those of scikit-learn's ``CountVectorizer(analyzer="char")`` (runs of two or
more whitespace characters read as one space), and the candidates are exactly the ones it
would keep (``min_df``; at most ``max_features`` by document frequency, ties broken as it
breaks them), but no vocabulary of strings is built: every n-gram of every text becomes an
exact integer key (its characters' ranks in the texts' alphabet, packed into 64-bit words
and padded with zeros, so keys sort as the strings do), document frequencies are counted
over the keys with numpy, and only the chosen n-grams are ever turned back into strings.
"""

from __future__ import annotations

import re

import numpy as np

WHITE_SPACES = re.compile(r"\s\s+")  # what CountVectorizer's char analyzer folds into " "


def _sortable(words: np.ndarray) -> np.ndarray:
    """(m, n_words) uint64 -> m keys that sort as the rows do: plain uint64 for one word,
    else a structured view whose fields compare in order."""
    if words.shape[1] == 1:
        return words[:, 0]
    dtype = np.dtype([(f"w{i}", np.uint64) for i in range(words.shape[1])])
    return np.ascontiguousarray(words).view(dtype).ravel()


def _dedup_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, run lengths) of sorted ``keys``."""
    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64)
    new = np.empty(len(keys), dtype=bool)
    new[0] = True
    new[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new)
    return keys[starts], np.diff(np.append(starts, len(keys)))


class NgramCoder:
    """Exact integer keys for the character n-grams of some texts.

    A character becomes its rank (from 1) in the sorted alphabet of the texts, in ``bits``
    bits; an n-gram packs its ranks, first character highest, into 64-bit words and pads with
    zeros to the longest n. Two n-grams share a key exactly when they are the same string,
    and keys sort as the strings do (code point order, a prefix before its extensions).
    """

    def __init__(self, docs, ngram_range):
        self.codes = [np.frombuffer(d.encode("utf-32-le", "surrogatepass"), dtype=np.uint32) for d in docs]
        everything = np.sort(np.concatenate(self.codes)) if self.codes else np.zeros(0, np.uint32)
        self.alphabet, _ = _dedup_sorted(everything)
        self.lookup = np.zeros(int(self.alphabet[-1]) + 1 if len(self.alphabet) else 1, dtype=np.uint64)
        self.lookup[self.alphabet] = np.arange(1, len(self.alphabet) + 1, dtype=np.uint64)
        self.bits = max(1, len(self.alphabet).bit_length())
        self.per_word = 64 // self.bits
        self.lo, self.hi = ngram_range
        self.n_words = -(-self.hi // self.per_word)

    def doc_keys(self, i: int) -> np.ndarray:
        """The distinct n-gram keys of document ``i``, sorted."""
        ranks = self.lookup[self.codes[i]]
        blocks = []
        for n in range(self.lo, min(self.hi, len(ranks)) + 1):
            m = len(ranks) - n + 1
            words = np.zeros((m, self.n_words), dtype=np.uint64)
            for w in range(self.n_words):
                first, last = w * self.per_word, min((w + 1) * self.per_word, n)
                if first >= n:
                    break
                acc = np.zeros(m, dtype=np.uint64)
                for j in range(first, last):
                    acc = (acc << np.uint64(self.bits)) | ranks[j:j + m]
                words[:, w] = acc << np.uint64(self.bits * (self.per_word - (last - first)))
            blocks.append(words)
        if not blocks:
            return _sortable(np.zeros((0, self.n_words), dtype=np.uint64))
        keys, _ = _dedup_sorted(np.sort(_sortable(np.concatenate(blocks))))
        return keys

    def decode(self, key) -> str:
        words = [int(key)] if self.n_words == 1 else [int(v) for v in key.tolist()]
        mask = (1 << self.bits) - 1
        chars = []
        for word in words:
            for k in range(self.per_word - 1, -1, -1):
                rank = (word >> (self.bits * k)) & mask
                if rank == 0:
                    return "".join(chars)
                chars.append(chr(int(self.alphabet[rank - 1])))
        return "".join(chars)


def document_frequency_matrix(texts, ngram_range, min_df: int, max_features: int | None):
    """(X, names): the binary texts x n-grams matrix (float32) of the n-grams that
    ``CountVectorizer(analyzer="char", ngram_range, min_df, max_features, binary=True,
    lowercase=False)`` keeps, columns in its (alphabetical) order, and ``names(columns)``.
    ``(None, None)`` when no n-gram reaches ``min_df``."""
    from scipy import sparse

    docs = [WHITE_SPACES.sub(" ", t) for t in texts]
    coder = NgramCoder(docs, ngram_range)
    per_doc = [coder.doc_keys(i) for i in range(len(docs))]
    keys = np.concatenate(per_doc)
    if len(keys) == 0:
        return None, None
    doc = np.repeat(np.arange(len(docs)), [len(k) for k in per_doc])
    # each (text, n-gram) pair is there once, so a key's run length is its document frequency
    distinct, df = _dedup_sorted(np.sort(keys))
    kept = np.flatnonzero(df >= min_df)  # in key order, which is the strings' order
    if len(kept) == 0:
        return None, None
    if max_features is not None and len(kept) > max_features:
        # CountVectorizer's rule, verbatim: its term frequencies are float32 document
        # frequencies here (binary counts), and it keeps the first max_features of this argsort
        tfs = df[kept].astype(np.float32)
        kept = kept[np.sort((-tfs).argsort()[:max_features])]
    vocabulary = distinct[kept]
    col = np.searchsorted(vocabulary, keys)  # keys come in sorted runs: a fast search
    col[col == len(vocabulary)] = 0
    hit = vocabulary[col] == keys
    X = sparse.csr_matrix(
        (np.ones(int(hit.sum()), dtype=np.float32), (doc[hit], col[hit])),
        shape=(len(docs), len(vocabulary)),
    )

    def names(cols):
        return [coder.decode(vocabulary[c]) for c in cols]

    return X, names


class GreedyNgramClassifier:
    """The selection above (``fit`` / ``predict_proba`` / ``classes_``, as scikit-learn's)."""

    def __init__(self, ngram_range=(5, 7), min_df: int = 3, min_ratio: float = 3.0,
                 max_ngrams: int = 50, max_features: int = 200_000, max_train_texts: int = 3000,
                 seed: int = 0):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.min_ratio = min_ratio
        self.max_ngrams = max_ngrams
        self.max_features = max_features
        self.max_train_texts = max_train_texts
        self.seed = seed

    def _greedy(self, X_side, log_ratio):
        """Indices of greedily chosen columns for one class (X_side: that class's rows).

        Only eligible columns (ratio at least ``min_ratio``) can be chosen, so only they are
        scanned; they keep their order, so ties go where a scan of all columns sends them
        (the higher ratio first, then the alphabetically first n-gram).
        """
        eligible = np.flatnonzero(log_ratio >= np.log(self.min_ratio))
        if len(eligible) == 0:
            return np.zeros(0, dtype=int)
        X_t = X_side.T.tocsr()[eligible]  # eligible n-grams x texts of the class
        ratio = log_ratio[eligible]
        open_ = np.ones(len(eligible), dtype=bool)
        uncovered = np.ones(X_side.shape[0])
        chosen = []
        for _ in range(self.max_ngrams):
            gain = np.asarray(X_t @ uncovered).ravel()
            gain[~open_] = -1
            best = int(np.argmax(gain + 1e-6 * ratio))
            if gain[best] < self.min_df:
                break
            chosen.append(int(eligible[best]))
            open_[best] = False
            uncovered[X_t[best].indices] = 0
        return np.array(chosen, dtype=int)

    def fit(self, texts, labels):
        labels = np.asarray(labels).astype(int)
        self.classes_ = np.array([0, 1])
        if len(labels) > self.max_train_texts:
            rng = np.random.default_rng(self.seed)
            share = self.max_train_texts / len(labels)
            keep = np.sort(np.concatenate([
                rng.choice(np.flatnonzero(labels == c), max(1, int(share * (labels == c).sum())), replace=False)
                for c in (0, 1)
            ]))
            texts, labels = [texts[i] for i in keep], labels[keep]
        X, names = document_frequency_matrix(texts, tuple(self.ngram_range), self.min_df, self.max_features)
        if X is None:  # no n-gram reaches min_df: nothing to select
            self.ngrams_, self.weights_ = [], np.zeros(0)
            self.selected_ = {"member": [], "nonmember": []}
            return self
        pos, neg = labels == 1, labels == 0
        df_pos = (np.asarray(X[pos].sum(0)).ravel() + 1) / (pos.sum() + 2)
        df_neg = (np.asarray(X[neg].sum(0)).ravel() + 1) / (neg.sum() + 2)
        log_ratio = np.log(df_pos / df_neg)
        member_side = self._greedy(X[pos], log_ratio)
        nonmember_side = self._greedy(X[neg], -log_ratio)
        chosen = np.concatenate([member_side, nonmember_side])
        self.ngrams_ = names(chosen)
        self.weights_ = log_ratio[chosen]
        self.selected_ = {"member": names(member_side), "nonmember": names(nonmember_side)}
        return self

    def predict_proba(self, texts):
        z = np.array([sum(w for g, w in zip(self.ngrams_, self.weights_) if g in t) for t in texts],
                     dtype=float)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])
