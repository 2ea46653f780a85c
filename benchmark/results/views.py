"""Per-class views of a record, made by the publication gate for public splits only: score
histograms per class, AUC by text-length bucket, and per-class length statistics.

They need the split's labels and texts, so only the gate (``gate``) makes them, and only where
the split is public (``published``: on a private split each of them is a label oracle). Only
aggregates leave this module (bin fractions, bucket AUCs, quantiles): no sample id or label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics

N_BINS = 24
N_LENGTH_BUCKETS = 4
BUCKET_RESAMPLES = 200  # bootstrap resamples behind each bucket's interval (stated on the page)


def joined(scores: pd.Series, labels: pd.Series, words: pd.Series) -> pd.DataFrame | None:
    """Scores (by uid) with their label and word count, finite scores only; None when the uids do
    not meet the split's samples in both classes (e.g. a group-level record, scored per user)."""
    frame = pd.DataFrame({"score": scores.astype(float)}).join(labels.rename("label"), how="inner")
    frame = frame.join(words.rename("words"), how="left")
    frame = frame[np.isfinite(frame["score"])]
    if frame.empty or frame["label"].nunique() != 2:
        return None
    return frame


def class_histogram(frame: pd.DataFrame, n_bins: int = N_BINS) -> dict:
    """Shared bin edges over both classes; each class's counts as a fraction of that class."""
    scores = frame["score"].to_numpy()
    lo, hi = float(scores.min()), float(scores.max())
    if not hi > lo:
        hi = lo + 1.0
    # edges from the finite range in float64; a range so wide that its width overflows is
    # binned on the scores' ranks instead (extreme but finite scores never break a view)
    if not np.isfinite(hi - lo):
        scores = pd.Series(scores).rank(method="average").to_numpy()
        frame = frame.assign(score=scores)
        lo, hi = float(scores.min()), float(scores.max())
    edges = np.linspace(lo, hi, n_bins + 1)
    out = {"edges": edges.tolist()}
    for name, label in (("members", 1), ("nonmembers", 0)):
        part = frame.loc[frame["label"] == label, "score"].to_numpy()
        counts, _ = np.histogram(part, bins=edges)
        out[name] = (counts / max(len(part), 1)).tolist()
        out["n_" + name] = int(len(part))
    return out


def length_buckets(frame: pd.DataFrame, n_buckets: int = N_LENGTH_BUCKETS) -> list[dict]:
    """AUC within quantile buckets of the word count (bucket edges over the scored samples).

    A bucket holding one class only has no AUC (``None``, with the counts shown)."""
    words = frame["words"].fillna(0).astype(int)
    edges = sorted(set(np.quantile(words, np.linspace(0, 1, n_buckets + 1)).round().astype(int).tolist()))
    if len(edges) < 2:
        edges = [int(words.min()), int(words.max())]
    rows = []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        last = i == len(edges) - 2
        mask = (words >= a) & ((words <= b) if last else (words < b))
        part = frame[mask]
        labels, scores = part["label"].to_numpy().astype(int), part["score"].to_numpy()
        n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
        row = {"words": f"{a}–{b}" if last else f"{a}–{b - 1}", "n_members": n_pos, "n_nonmembers": n_neg,
               "auc": None, "auc_ci95": None}
        if n_pos and n_neg:
            row["auc"] = float(metrics.auc(labels, scores))
            row["auc_ci95"] = [float(v) for v in metrics.auc_interval(labels, scores, BUCKET_RESAMPLES, 0)]
        rows.append(row)
    return rows


def length_stats(frame: pd.DataFrame) -> dict:
    """Per class: the word counts' size, min, quartiles, max and mean over the scored samples."""
    out = {}
    for name, label in (("members", 1), ("nonmembers", 0)):
        w = frame.loc[frame["label"] == label, "words"].fillna(0).to_numpy(float)
        q25, median, q75 = np.quantile(w, [0.25, 0.5, 0.75])
        out[name] = {"n": int(len(w)), "min": float(w.min()), "q25": float(q25), "median": float(median),
                     "q75": float(q75), "max": float(w.max()), "mean": float(w.mean())}
    return out


def views(scores: pd.Series, labels: pd.Series, words: pd.Series) -> dict | None:
    """The ``views`` block of one record, or None when its uids do not meet the split's labels."""
    frame = joined(scores, labels, words)
    if frame is None:
        return None
    return {"n": int(len(frame)), "histogram": class_histogram(frame), "length_buckets": length_buckets(frame),
            "bucket_resamples": BUCKET_RESAMPLES, "length_stats": length_stats(frame)}
