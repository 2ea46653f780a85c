"""Per-sample views of a result: score histograms per class and AUC by text-length bucket.

A record's per-sample file holds (uid, score) only; labels and texts live in the split, which
the builder reads from the suite cache (``MEMBENCH_HOME``) when that split is materialized
there with the same content hash as the record's. Only aggregates leave this module (bin
counts, bucket AUCs): per-sample labels are never written into the site, so a private
split's assignment stays private.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import metrics
from ..errors import MembenchError

N_BINS = 24
N_LENGTH_BUCKETS = 4
BUCKET_RESAMPLES = 200  # bootstrap resamples behind each bucket's interval (stated on the page)


@dataclass
class SplitSamples:
    """What the builder knows about a split's samples: labels and word counts by uid."""

    labels: pd.Series  # uid -> 0/1
    words: pd.Series  # uid -> number of whitespace-separated words


def load_split_samples(split_id: str, content_hash: str) -> tuple[SplitSamples | None, str]:
    """(samples, "") when the split is materialized with the record's content hash, else
    (None, why not) in words a reader can act on."""
    from .. import suite

    try:
        spec = suite.get_split(split_id)
        if not suite.is_materialized(split_id):
            return None, f"split {split_id} is not materialized where the site was built (`membench suite fetch {split_id}`)"
        split = suite.load(spec)
        if split.content_hash != content_hash:
            return None, (f"the split materialized where the site was built has content hash "
                          f"{split.content_hash[:12]}…, the records {content_hash[:12]}…")
        labels = split.labels()
    except (MembenchError, OSError, KeyError, ValueError) as exc:
        return None, f"the labels of {split_id} could not be read where the site was built ({str(exc).splitlines()[0]})"
    words = split.samples.set_index("uid")["text"].map(lambda t: len(str(t).split()))
    return SplitSamples(labels=labels, words=words), ""


def read_scores(path: Path) -> pd.Series:
    table = pd.read_parquet(path, columns=["uid", "score"])
    return table.set_index("uid")["score"].astype(float)


def _joined(scores: pd.Series, samples: SplitSamples) -> pd.DataFrame | None:
    frame = pd.DataFrame({"score": scores}).join(samples.labels.rename("label"), how="inner")
    frame = frame.join(samples.words.rename("words"), how="left")
    frame = frame[np.isfinite(frame["score"])]
    if frame.empty or frame["label"].nunique() != 2:
        return None
    return frame


def class_histogram(frame: pd.DataFrame, n_bins: int = N_BINS) -> dict:
    """Shared bin edges over both classes; each class's counts as a fraction of that class."""
    scores = frame["score"].to_numpy()
    lo, hi = float(scores.min()), float(scores.max())
    if hi <= lo:
        hi = lo + 1.0
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
            row["auc"] = metrics.auc(labels, scores)
            row["auc_ci95"] = metrics.auc_interval(labels, scores, BUCKET_RESAMPLES, 0)
        rows.append(row)
    return rows


def views(scores_file: Path, samples: SplitSamples) -> dict | None:
    """Histogram and length buckets of one record, or None when its uids do not meet the
    split's labels (e.g. a group-level record, scored per user)."""
    frame = _joined(read_scores(scores_file), samples)
    if frame is None:
        return None
    return {"histogram": class_histogram(frame), "buckets": length_buckets(frame), "n": int(len(frame))}
