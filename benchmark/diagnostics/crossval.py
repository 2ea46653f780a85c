"""Out-of-fold scoring: no sample is ever scored by a model that was fit on it.

Stratified k-fold cross-validation (shuffled, fixed seed) partitions the samples; each fold
is scored by a fresh clone of the model fit on the other folds only. Every sample therefore
gets exactly one score, from a model that never saw it or its label. Exact duplicate texts
must be removed before this (the diagnostics do), or a copy in a training fold would leak.

The folds depend on the content, never on the order rows arrive in: rows are put in content
order first (the text's uid, the same hash a materialized split is sorted by, then the text
and the label), the seeded split is drawn in that order, and every model is fit and scored
on its rows in that order. The same texts therefore get the same out-of-fold scores whether
they come from a materialized split, a file, or the same file shuffled.

Where membership is assigned per group (a user, an author, a book, a repository), a group's
texts share its label and usually its topic, so a classifier fit on some of a user's texts
scores the user's other texts from the topic alone: stratified folds over texts then measure
who wrote a text, not whether it was trained on. With ``groups`` the folds are drawn over
groups (scikit-learn's ``StratifiedGroupKFold``, shuffled, the same seed): no group has texts
on both sides of any fold.
"""

from __future__ import annotations

import os

import numpy as np
from tqdm.auto import tqdm

from ..suite import make_uid

N_FOLDS = 5
SEED = 0
# Worker processes pay for themselves from about this many characters of text (about 5 s of
# CPU in one process for all five baselines); below it, spawning them and importing membench
# in each costs as much as they save. See BENCHMARKS.md, "Diagnostics".
PARALLEL_FROM_CHARS = 2_000_000


def content_order(texts, labels) -> np.ndarray:
    """Row positions sorted by content: uid (hash of the text), then text, then label."""
    labels = np.asarray(labels).astype(int)
    keys = [(make_uid(t), t, int(y)) for t, y in zip(texts, labels)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=int)


def folds(texts, labels, *, groups=None, n_folds: int = N_FOLDS, seed: int = SEED):
    """(train, test) position pairs of a seeded stratified k-fold drawn in content order.

    Positions index the rows as given; within each pair they are listed in content order.
    With ``groups`` (one per row) the folds are stratified group folds: every group lies in
    exactly one test fold, so no model scores a text of a group it was fit on.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = np.asarray(labels).astype(int)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    order = content_order(texts, labels)
    if groups is None:
        n_splits = min(n_folds, int(np.bincount(labels, minlength=2).min()))
        if n_splits < 2:
            raise ValueError("cross-validation needs at least two samples of each class")
        cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        pairs = cv.split(np.zeros(len(order)), labels[order])
    else:
        groups = np.asarray([str(g) for g in groups], dtype=object)
        if len(groups) != len(labels):
            raise ValueError(f"{len(groups)} groups but {len(labels)} labels")
        n_splits = min(n_folds, *(len(set(groups[labels == c])) for c in (0, 1)))
        if n_splits < 2:
            raise ValueError("grouped cross-validation needs at least two groups holding each class")
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        pairs = cv.split(np.zeros(len(order)), labels[order], groups[order])
    return [(order[train], order[test]) for train, test in pairs]


def _fit_and_score(make_model, train_texts, train_labels, test_texts):
    """One fold of one model: fit on the other folds, P(member) for the held-out fold.

    Numerical libraries run one thread per fold, so a fold gives the same numbers whether
    it runs alone, beside other folds, or in a worker process.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        model = make_model().fit(train_texts, train_labels)
        member_col = list(model.classes_).index(1)
        return model.predict_proba(test_texts)[:, member_col]


def _rows(texts) -> np.ndarray:
    """Texts as an object array, or a 2-D feature matrix as it is (one row per sample)."""
    if isinstance(texts, np.ndarray) and texts.ndim == 2:
        return texts
    return np.asarray(list(texts), dtype=object)


def _take(rows: np.ndarray, positions):
    return rows[positions] if rows.ndim == 2 else list(rows[positions])


def out_of_fold_table(texts, labels, makers: dict, folds_, *, n_jobs: int = 1, progress: bool = False) -> dict:
    """``{name: out-of-fold P(member)}`` for every model in ``makers`` over the same folds.

    ``texts`` is a list of texts, or a 2-D feature matrix for models over features (the
    tokenizer baseline's, computed without labels).

    The (model, fold) fits are independent: with ``n_jobs`` > 1 they run in that many
    worker processes (joblib), fold by fold so the slow models spread over the workers.
    """
    from joblib import Parallel, delayed

    texts = _rows(texts)
    labels = np.asarray(labels).astype(int)
    tasks = [(name, train, test) for train, test in folds_ for name in makers]
    parts = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fit_and_score)(makers[name], _take(texts, train), labels[train], _take(texts, test))
        for name, train, test in tasks
    )
    parts = list(tqdm(parts, total=len(tasks), desc="blind baselines (model x fold)", disable=not progress))
    out = {name: np.full(len(labels), np.nan) for name in makers}
    for (name, _, test), scores in zip(tasks, parts):
        out[name][test] = scores
    for name, scores in out.items():  # the folds are a partition: a gap would be a bug
        if np.isnan(scores).any():
            raise AssertionError(f"{name}: some samples received no out-of-fold score")
    return out


def out_of_fold_scores(texts, labels, make_model, *, folds_=None, groups=None, n_folds=N_FOLDS, seed=SEED,
                       n_jobs=1):
    """P(member) for every sample from a model fit on the other folds (never on itself).

    ``make_model`` returns an unfitted scikit-learn classifier over a list of texts (for
    example ``BASELINES["blind_bow"].make``). ``folds_`` (from ``folds``) lets several models
    share one partition; ``groups`` draws grouped folds (see ``folds``). Higher = member.
    """
    if folds_ is None:
        folds_ = folds(list(texts), labels, groups=groups, n_folds=n_folds, seed=seed)
    return out_of_fold_table(texts, labels, {"model": make_model}, folds_, n_jobs=n_jobs)["model"]


def default_jobs(texts) -> int:
    """Worker processes for cross-validating ``texts``: every usable core once the texts are
    long enough (``PARALLEL_FROM_CHARS``) to pay for starting the workers, else 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if sum(len(t) for t in texts) >= PARALLEL_FROM_CHARS else 1
