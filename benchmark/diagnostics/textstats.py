"""Label-aware text statistics of a split: duplicates, lengths, 13-gram overlap.

- Exact duplicates: identical texts. Near duplicates: after normalization (lowercase, words
  only) identical, or Jaccard similarity of word 5-gram shingle sets >= 0.8.
- Lengths per class in words (whitespace-separated) and characters.
- 13-gram overlap: word 13-grams (lowercased \\w+ tokens), the contamination unit of the
  MIMIR filters: how many texts of one class share at least one 13-gram with the other class.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

WORD = re.compile(r"\w+")
NEAR_JACCARD = 0.8
SHINGLE = 5
OVERLAP_N = 13


def normalize(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def duplicates(texts, labels) -> dict:
    """Exact and near duplicate counts (rows beyond the first of each group; pairs for near)."""
    labels = np.asarray(labels).astype(int)
    exact = Counter(texts)
    label_sets: dict[str, set] = {}
    for t, lab in zip(texts, labels):
        label_sets.setdefault(t, set()).add(int(lab))
    exact_conflicts = sum(1 for s in label_sets.values() if len(s) > 1)
    norm = [normalize(t) for t in texts]
    norm_groups = Counter(norm)
    return {
        "exact_duplicate_rows": int(sum(c - 1 for c in exact.values())),
        "exact_duplicate_texts_with_conflicting_labels": int(exact_conflicts),
        "normalized_duplicate_rows": int(sum(c - 1 for c in norm_groups.values())),
        **near_duplicate_pairs(norm, labels),
        "near_duplicate_rule": f"normalized-identical, or Jaccard >= {NEAR_JACCARD} of word "
                               f"{SHINGLE}-gram shingles",
    }


def _shingle_matrix(norm_texts, n: int):
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, t in enumerate(norm_texts):
        words = t.split()
        grams = {" ".join(words[j:j + n]) for j in range(max(1, len(words) - n + 1))} if words else set()
        for g in grams:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(norm_texts), max(1, len(vocab))))


def near_duplicate_pairs(norm_texts, labels) -> dict:
    from scipy import sparse

    X = _shingle_matrix(norm_texts, SHINGLE)
    sizes = np.asarray(X.sum(1)).ravel()
    inter = sparse.triu(X @ X.T, k=1).tocoo()
    union = sizes[inter.row] + sizes[inter.col] - inter.data
    jacc = np.divide(inter.data, union, out=np.zeros_like(inter.data), where=union > 0)
    hit = jacc >= NEAR_JACCARD
    r, c = inter.row[hit], inter.col[hit]
    return {
        "near_duplicate_pairs": int(hit.sum()),
        "near_duplicate_pairs_across_classes": int((labels[r] != labels[c]).sum()),
        "texts_in_near_duplicate_pairs": int(len(set(r.tolist()) | set(c.tolist()))),
    }


def _stats(values: np.ndarray) -> dict:
    q = np.percentile(values, [10, 50, 90])
    return {
        "mean": float(np.mean(values)), "median": float(q[1]), "p10": float(q[0]),
        "p90": float(q[2]), "min": int(values.min()), "max": int(values.max()),
    }


def lengths(texts, labels) -> dict:
    labels = np.asarray(labels).astype(int)
    words = np.array([len(t.split()) for t in texts])
    chars = np.array([len(t) for t in texts])
    longest = int(words.max())
    from sklearn.metrics import roc_auc_score

    out = {
        "longest_words": longest,
        "near_longest_rule": "at least 90% of the longest text's words",
        "word_count_auc": float(roc_auc_score(labels, words)),
        "word_count_auc_note": "in-sample AUC of the word count as a score (higher = member)",
    }
    for name, lab in (("members", 1), ("nonmembers", 0)):
        w = words[labels == lab]
        out[name] = {
            "words": _stats(w),
            "chars": _stats(chars[labels == lab]),
            "share_near_longest": float(np.mean(w >= 0.9 * longest)),
        }
    return out


def _ngram_sets(text: str, n: int) -> set[int]:
    words = WORD.findall(text.lower())
    return {hash(" ".join(words[i:i + n])) for i in range(len(words) - n + 1)}


def ngram_overlap(texts, labels, n: int = OVERLAP_N) -> dict:
    labels = np.asarray(labels).astype(int)
    grams = [_ngram_sets(t, n) for t in texts]
    member_pool = set().union(*(g for g, lab in zip(grams, labels) if lab == 1))
    nonmember_pool = set().union(*(g for g, lab in zip(grams, labels) if lab == 0))
    shared = member_pool & nonmember_pool
    n_mem, n_non = int((labels == 1).sum()), int((labels == 0).sum())
    mem_hit = sum(1 for g, lab in zip(grams, labels) if lab == 1 and g & nonmember_pool)
    non_hit = sum(1 for g, lab in zip(grams, labels) if lab == 0 and g & member_pool)
    return {
        "n": n,
        "unit": "lowercased word n-grams",
        "nonmembers_sharing_a_member_ngram": non_hit,
        "nonmembers_sharing_share": non_hit / n_non if n_non else 0.0,
        "members_sharing_a_nonmember_ngram": mem_hit,
        "members_sharing_share": mem_hit / n_mem if n_mem else 0.0,
        "shared_distinct_ngrams": len(shared),
        "texts_shorter_than_n": int(sum(1 for g in grams if not g)),
    }
