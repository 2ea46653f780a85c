"""Diagnostics: blind baselines out of fold, planted shifts, verdicts, file loading, controls."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from benchmark import diagnostics
from benchmark.diagnostics import BASELINES, out_of_fold_scores
from benchmark.diagnostics.report import dedup
from benchmark.errors import MembenchError
from benchmark.metrics import auc

WORDS = [f"w{i}" for i in range(400)]


def random_texts(n, seed, lo=30, hi=50, extra=""):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) + extra for _ in range(n)]


def test_importing_the_cli_and_the_diagnostics_loads_no_scikit_learn_scipy_or_joblib():
    """``membench --help`` and the readers of saved diagnostics do not pay for the numerical
    libraries: the baselines import them when a model is made, not on import."""
    code = ("import sys\nimport benchmark.cli, benchmark.diagnostics, benchmark.evaluate\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib', 'threadpoolctl'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    # and the baselines still work once asked for
    texts, labels = null_split(30)
    assert np.isfinite(out_of_fold_scores(texts, labels, BASELINES["blind_length"].make)).all()


def null_split(n=120, seed=0):
    texts = random_texts(2 * n, seed)
    return texts, np.array([1] * n + [0] * n)


class Memorizer(ClassifierMixin, BaseEstimator):
    """Scores 1/0 for a text it was trained on, 0.5 for any other: perfect only by leakage."""

    def fit(self, texts, labels):
        self.classes_ = np.array([0, 1])
        self.seen_ = dict(zip(texts, labels))
        return self

    def predict_proba(self, texts):
        p = np.array([float(self.seen_.get(t, 0.5)) for t in texts])
        return np.column_stack([1 - p, p])


def test_cross_validation_never_scores_a_sample_with_a_model_trained_on_it():
    texts, labels = null_split()
    leaked = Memorizer().fit(texts, labels).predict_proba(texts)[:, 1]
    assert auc(labels, leaked) == 1.0  # what leakage would look like
    oof = out_of_fold_scores(texts, labels, Memorizer)
    assert np.all(oof == 0.5) and auc(labels, oof) == 0.5


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_is_deterministic_under_its_seed(name):
    members = [t + f" in {1990 + i % 9} qzxjv" for i, t in enumerate(random_texts(40, 11, 20, 60))]
    texts = members + random_texts(40, 12, 10, 40)
    labels = np.array([1] * 40 + [0] * 40)
    first = out_of_fold_scores(texts, labels, BASELINES[name].make)
    assert np.array_equal(first, out_of_fold_scores(texts, labels, BASELINES[name].make))
    assert auc(labels, first) > 0.5  # and each one finds its planted signal here


def _planted(n=60, seed=11):
    """Members with years and a marker, non-members shorter: every baseline has something to find."""
    members = [t + f" in {1990 + i % 9} qzxjv" for i, t in enumerate(random_texts(n, seed, 20, 60))]
    return members + random_texts(n, seed + 1, 10, 40), np.array([1] * n + [0] * n)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_row_order_changes_no_out_of_fold_score(name):
    texts, labels = _planted()
    perm = np.random.default_rng(3).permutation(len(texts))
    shuffled_texts, shuffled_labels = [texts[i] for i in perm], labels[perm]
    make = BASELINES[name].make
    first = dict(zip(texts, out_of_fold_scores(texts, labels, make)))
    again = dict(zip(shuffled_texts, out_of_fold_scores(shuffled_texts, shuffled_labels, make)))
    assert first == again  # the same score for every text, bit for bit


def test_row_order_changes_no_figure_of_the_diagnosis():
    texts, labels = _planted()
    texts, labels = texts + texts[:7], np.concatenate([labels, labels[:7]])  # duplicates too
    perm = np.random.default_rng(4).permutation(len(texts))
    a = diagnostics.public(diagnostics.diagnose(texts, labels))
    b = diagnostics.public(diagnostics.diagnose([texts[i] for i in perm], labels[perm]))
    assert {k: v["auc"] for k, v in a["baselines"].items()} == {k: v["auc"] for k, v in b["baselines"].items()}
    assert a == b


def test_a_file_and_the_split_materialized_from_it_get_identical_diagnostics(tmp_path, monkeypatch, capsys):
    """The rows of a file, shuffled, against the same rows materialized as a split (sorted by uid)."""
    from benchmark import suite
    from benchmark.cli import main

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    texts, labels = _planted(45, seed=31)
    perm = np.random.default_rng(5).permutation(len(texts))
    (tmp_path / "copy").mkdir()
    source = _write(tmp_path / "copy" / "256.jsonl",
                    [{"input": texts[i], "label": int(labels[i])} for i in perm])
    suite.fetch("wikimia/256", from_dir=tmp_path / "copy")
    assert main(["diagnose", "wikimia/256", "--results-dir", str(tmp_path / "results"), "--json"]) == 0
    from_split = json.loads(capsys.readouterr().out)
    assert main(["diagnose", "--file", str(source), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    for key in ("blind_auc", "blind_auc_ci95", "blind_best", "verdict", "baselines", "counts",
                "lengths", "duplicates", "ngram_overlap", "cross_validation"):
        assert from_file[key] == from_split[key], key


def test_real_file_and_split_agree(shared_data, tmp_path, monkeypatch):
    """WikiMIA 256 from its jsonl (file order) and as a materialized split (uid order)."""
    from benchmark import suite

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    split = suite.fetch("wikimia/256", from_dir=shared_data / "wikimia")
    labels = split.labels().reindex(split.samples["uid"]).to_numpy()
    a = diagnostics.diagnose(split.samples["text"].tolist(), labels)
    texts, file_labels, _ = diagnostics.load_labelled(shared_data / "wikimia" / "256.jsonl")
    b = diagnostics.diagnose(texts, file_labels)
    assert {k: v["auc"] for k, v in a["baselines"].items()} == {k: v["auc"] for k, v in b["baselines"].items()}


def test_duplicates_are_dropped_before_cross_validation():
    texts, labels = null_split(60)
    texts, labels = texts + texts[:30], np.concatenate([labels, labels[:30]])
    keep, conflicting = dedup(texts, labels)
    assert len(keep) == 120 and conflicting == 0
    diag = diagnostics.diagnose(texts, labels, baselines=["blind_length"])
    assert diag["duplicates"]["exact_duplicate_rows"] == 30
    assert diag["counts"]["analyzed"] == 120 and diag["counts"]["dropped_rows"] == 30


@pytest.mark.parametrize(
    "baseline, make_members, make_nonmembers",
    [
        ("blind_date",
         lambda: [t + f" It happened in {1990 + i % 20}." for i, t in enumerate(random_texts(100, 1))],
         lambda: [t + f" It happened in {2022 + i % 3}." for i, t in enumerate(random_texts(100, 2))]),
        ("blind_length", lambda: random_texts(100, 3, 60, 90), lambda: random_texts(100, 4, 20, 45)),
        ("blind_ngram", lambda: random_texts(100, 5, extra=" qzxjv"), lambda: random_texts(100, 6)),
    ],
)
def test_planted_shift_is_caught_by_the_matching_baseline(baseline, make_members, make_nonmembers):
    members, nonmembers = make_members(), make_nonmembers()
    texts, labels = members + nonmembers, np.array([1] * len(members) + [0] * len(nonmembers))
    planted = auc(labels, out_of_fold_scores(texts, labels, BASELINES[baseline].make))
    assert planted >= 0.95
    null_texts, null_labels = null_split(100, seed=7)
    null = auc(null_labels, out_of_fold_scores(null_texts, null_labels, BASELINES[baseline].make))
    assert null <= 0.65


def test_date_baseline_learns_the_cutoff_on_training_folds_only():
    clf = BASELINES["blind_date"].make()
    clf.fit(["born 1950", "in 1999 and 1960", "since 2021", "2023 now", "no year"], [1, 1, 0, 0, 1])
    assert clf.cutoff_ == 1999  # the only seen year that separates the training labels
    p = clf.predict_proba(["year 1980", "year 2024"])[:, 1]
    assert p[0] > 0.5 > p[1]


def test_null_split_is_clean_and_json_has_every_figure():
    # 250 texts a class: on 120 a class the best of five null AUCs tops 0.6 about one draw in ten
    texts, labels = null_split(250)
    diag = diagnostics.public(diagnostics.diagnose(texts, labels))
    assert diag["verdict"] == "clean" and diag["blind_auc"] <= 0.65
    assert set(diag["baselines"]) == set(BASELINES)
    best = diag["baselines"][diag["blind_best"]]
    assert diag["blind_auc"] == max(b["auc"] for b in diag["baselines"].values()) == best["auc"]
    for b in diag["baselines"].values():
        assert {"auc", "auc_ci95", "tpr_at_1pct_fpr"} <= set(b)
    for key in ("duplicates", "lengths", "ngram_overlap", "verdict_rule", "blind_auc_ci95"):
        assert key in diag
    json.dumps(diag)  # serializable as printed by --json


@pytest.mark.parametrize(
    "auc_value, ci, expected",
    [(0.42, [0.36, 0.47], "clean"), (0.55, [0.49, 0.61], "clean"), (0.62, [0.45, 0.8], "clean"),
     (0.65, [0.58, 0.71], "mild shift"), (0.75, [0.7, 0.8], "shifted"), (0.99, [0.98, 1.0], "shifted")],
)
def test_verdict_thresholds(auc_value, ci, expected):
    assert diagnostics.verdict(auc_value, ci) == expected


# -- real data -------------------------------------------------------------------------------

REAL = [("wikimia/32.jsonl", None), ("wikimia/64.jsonl", None), ("wikimia/128.jsonl", None),
        ("wikimia24", "WikiMIA_length32"), ("wikimia24", "WikiMIA_length64"),
        ("wikimia24", "WikiMIA_length128"), ("wikimia24/WikiMIA_length256", None)]


@pytest.mark.parametrize("path, config", REAL)
def test_real_post_hoc_sets_are_shifted(shared_data, path, config):
    texts, labels, _ = diagnostics.load_labelled(shared_data / path, config=config)
    # two cheap baselines already clear the bar; the best of all five can only be higher
    diag = diagnostics.diagnose(texts, labels, baselines=["blind_bow", "blind_date"])
    assert diag["blind_auc"] >= 0.95
    assert diag["verdict"] == "shifted"


@pytest.mark.parametrize("length, dups", [(32, 172), (64, 157), (128, 64), (256, 67)])
def test_wikimia24_duplicates_are_counted(shared_data, length, dups):
    texts, labels, _ = diagnostics.load_labelled(shared_data / "wikimia24" / f"WikiMIA_length{length}")
    keep, conflicting = dedup(texts, labels)
    assert len(texts) - len(keep) == dups and conflicting == 0


def test_wikimia24_256_length_confound(shared_data):
    texts, labels, _ = diagnostics.load_labelled(shared_data / "wikimia24" / "WikiMIA_length256")
    diag = diagnostics.diagnose(texts, labels, baselines=["blind_length"])
    lengths = diag["lengths"]
    assert 0.6 <= lengths["word_count_auc"] <= 0.68
    assert 0.55 <= diag["baselines"]["blind_length"]["auc"] <= 0.68
    assert lengths["nonmembers"]["words"]["median"] < 64 < lengths["members"]["words"]["median"]
    assert diag["duplicates"]["exact_duplicate_rows"] == 67


# -- files and bad input ---------------------------------------------------------------------

ROWS = [{"text": f"member text {i} " + "a b c " * (i % 5), "label": 1} for i in range(6)] + [
    {"text": f"other text {i} " + "x y " * (i % 4), "label": 0} for i in range(6)
]


def test_every_file_format_loads_the_same_rows(tmp_path):
    import datasets

    frame = pd.DataFrame(ROWS)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "ds"))
    datasets.DatasetDict({"a": datasets.Dataset.from_pandas(frame)}).save_to_disk(str(tmp_path / "dd"))
    for name, label in (("member", 1), ("nonmember", 0)):
        (tmp_path / "dirs" / name).mkdir(parents=True)
        for i, row in enumerate(r for r in ROWS if r["label"] == label):
            (tmp_path / "dirs" / name / f"{i}.txt").write_text(row["text"])
    expected = sorted((r["text"], r["label"]) for r in ROWS)
    for path in ("d.jsonl", "d.csv", "d.parquet", "ds", "dd", "dirs"):
        texts, labels, info = diagnostics.load_labelled(tmp_path / path)
        assert sorted(zip(texts, labels.tolist())) == expected, path


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: _write(p, [r for r in ROWS if r["label"] == 1]), "one class only"),
        (lambda p: _write(p, [{"body": r["text"], "label": r["label"]} for r in ROWS]), "no text field"),
        (lambda p: _write(p, ROWS[:-1] + [{"text": "   ", "label": 0}]), "empty text"),
        (lambda p: p.write_bytes(b'{"text": "caf\xe9", "label": 1}\n'), "invalid UTF-8"),
        (lambda p: _write(p, ROWS[:-1] + [{"text": "t", "label": "maybe"}]), "must be 0 or 1"),
    ],
)
def test_bad_input_gets_one_clear_error_naming_the_file(tmp_path, capsys, make, problem):
    from benchmark.cli import main

    path = tmp_path / "bad.jsonl"
    make(path)
    with pytest.raises(MembenchError, match=problem) as err:
        diagnostics.load_labelled(path)
    assert str(path) in str(err.value)
    assert main(["diagnose", "--file", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0] and str(path) in lines[0]


def test_missing_named_field_lists_the_fields(tmp_path):
    path = _write(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(MembenchError, match="no label field 'member'; fields: text, label"):
        diagnostics.load_labelled(path, label_field="member")


def test_diagnose_file_cli_json_has_top_level_blind_auc(tmp_path, capsys):
    from benchmark.cli import main

    path = _write(tmp_path / "d.jsonl", ROWS)
    assert main(["diagnose", "--file", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["blind_auc"] <= 1 and out["verdict"] in ("clean", "mild shift", "shifted")
    assert out["subject"]["path"] == str(path.resolve())


# -- split diagnosis, results and controls ---------------------------------------------------

def test_demo_split_is_clean_and_its_blind_results_are_written(tmp_path, monkeypatch):
    from benchmark import home, results

    monkeypatch.setattr(home, "diagnostics_dir", lambda: tmp_path / "home-diagnostics")
    records = diagnostics.write_blind_results("demo/pydoc", tmp_path / "results")
    demo = diagnostics.load_saved("demo/pydoc")
    assert demo["blind_auc"] <= 0.6 and demo["verdict"] == "clean"
    assert 0.36 <= demo["baselines"]["blind_bow"]["auc"] <= 0.5  # the known anti-learning dip
    found = {rec["scorer"]["name"]: rec for _, rec in results.iter_records(tmp_path / "results")}
    assert set(found) == set(BASELINES)
    assert all(r["scorer"]["kind"] == "blind_baseline" and r["target"]["id"] == "none" for r in found.values())
    saved = json.loads(home.diagnostics_file("demo/pydoc", tmp_path / "results").read_text())
    assert saved["blind_auc"] == records[0]["metrics"]["auc"] == max(r["metrics"]["auc"] for r in found.values())
    assert saved["subject"]["id"] == "demo/pydoc" and "_scores" not in saved
    assert (tmp_path / "home-diagnostics" / "demo" / "pydoc.json").exists()


@pytest.mark.slow
def test_control_split_run_reports_shift_sensitivity(tmp_path, monkeypatch):
    from benchmark import suite, targets
    from benchmark.evaluate import RunSpec, run
    from benchmark.suite import registry

    table = dict(registry.splits())
    table["demo/pydoc"] = replace(table["demo/pydoc"], track="control",
                                  label_meaning="NOT membership: a test relabelling")
    monkeypatch.setattr(registry, "splits", lambda: table)
    assert suite.get_split("demo/pydoc").track == "control"
    targets.ensure_demo_target(progress=False)
    records = run(RunSpec.build("demo/neox-tiny", "demo/pydoc", ["loss"], results_dir=tmp_path, progress=False)).records
    shift = records[0]["shift_sensitivity"]
    assert shift["auc"] == records[0]["metrics"]["auc"]
    assert shift["label"].startswith("NOT membership")
    assert diagnostics.control_fields(replace(table["demo/pydoc"], track="demo"), records[0]["metrics"]) == {}


# -- the fast n-gram baseline against the vocabulary it replaces ------------------------------

def _count_vectorizer(min_df=3, max_features=200_000, ngram_range=(5, 7)):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(analyzer="char", ngram_range=ngram_range, min_df=min_df, binary=True,
                           lowercase=False, max_features=max_features, dtype=np.float32)


class VocabularyGreedyNgram(ClassifierMixin, BaseEstimator):
    """The n-gram baseline as it was first written: CountVectorizer's whole vocabulary, then
    pruning, then a greedy scan of every column (the reference the fast one must equal)."""

    def __init__(self, min_df=3, min_ratio=3.0, max_ngrams=50, max_features=200_000):
        self.min_df, self.min_ratio, self.max_ngrams, self.max_features = min_df, min_ratio, max_ngrams, max_features

    def _greedy(self, X_side, log_ratio):
        eligible = log_ratio >= np.log(self.min_ratio)
        uncovered = np.ones(X_side.shape[0])
        X_t = X_side.T.tocsr()
        chosen = []
        for _ in range(self.max_ngrams):
            gain = np.asarray(X_t @ uncovered).ravel()
            gain[~eligible] = -1
            best = int(np.argmax(gain + 1e-6 * log_ratio))
            if gain[best] < self.min_df:
                break
            chosen.append(best)
            eligible[best] = False
            uncovered[X_t[best].indices] = 0
        return np.array(chosen, dtype=int)

    def fit(self, texts, labels):
        labels = np.asarray(labels).astype(int)
        vectorizer = _count_vectorizer(self.min_df, self.max_features)
        X = vectorizer.fit_transform(texts).tocsr()
        pos, neg = labels == 1, labels == 0
        df_pos = (np.asarray(X[pos].sum(0)).ravel() + 1) / (pos.sum() + 2)
        df_neg = (np.asarray(X[neg].sum(0)).ravel() + 1) / (neg.sum() + 2)
        log_ratio = np.log(df_pos / df_neg)
        chosen = np.concatenate([self._greedy(X[pos], log_ratio), self._greedy(X[neg], -log_ratio)])
        names = vectorizer.get_feature_names_out()
        self.ngrams_, self.weights_ = [str(names[i]) for i in chosen], log_ratio[chosen]
        return self


def _wide_alphabet_texts(n, seed):
    """Texts over 700 distinct characters (keys span several 64-bit words), runs of spaces,
    tabs and newlines, a few texts shorter than an n-gram, and shared phrases to count."""
    rng = random.Random(seed)
    alphabet = [chr(0x4E00 + i) for i in range(600)] + [chr(0x0400 + i) for i in range(100)] + list(" \t\n")
    phrases = ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 9))) for _ in range(30)]
    texts = []
    for _ in range(n):
        parts = [rng.choice(phrases) if rng.random() < 0.3 else rng.choice(alphabet) * rng.randint(1, 3)
                 for _ in range(rng.randint(0, 40))]
        texts.append(("  " if rng.random() < 0.2 else "").join(parts)[: rng.choice([3, 400])])
    return texts


@pytest.mark.parametrize("min_df, max_features", [(3, 200_000), (2, 300), (1, 50)])
@pytest.mark.parametrize("corpus", ["planted", "wide"])
def test_ngram_counts_are_exactly_count_vectorizers(corpus, min_df, max_features):
    from benchmark.diagnostics.ngrams import document_frequency_matrix

    texts = _planted(80)[0] if corpus == "planted" else _wide_alphabet_texts(120, seed=9)
    reference = _count_vectorizer(min_df, max_features)
    expected = reference.fit_transform(texts).tocsr()
    X, names = document_frequency_matrix(texts, (5, 7), min_df, max_features)
    assert names(range(X.shape[1])) == list(reference.get_feature_names_out())
    assert X.dtype == expected.dtype and X.shape == expected.shape and (X != expected).nnz == 0


@pytest.mark.parametrize("corpus", ["demo", "wide"])
def test_fast_ngram_selection_equals_the_vocabulary_reference_on_every_fold(corpus):
    from benchmark import suite
    from benchmark.diagnostics.crossval import folds
    from benchmark.diagnostics.ngrams import GreedyNgramClassifier

    if corpus == "demo":
        split = suite.ensure("demo/pydoc")
        texts = split.samples["text"].tolist()
        labels = split.labels().reindex(split.samples["uid"]).to_numpy()
    else:
        texts = _wide_alphabet_texts(200, seed=3)
        texts, labels = list(dict.fromkeys(texts)), None
        labels = np.array([i % 2 for i in range(len(texts))])
        texts = [t + (" 甲乙丙丁戊" if y and i % 3 else "") for i, (t, y) in enumerate(zip(texts, labels))]
    for train, _ in folds(texts, labels):
        train_texts, train_labels = [texts[i] for i in train], labels[train]
        fast = GreedyNgramClassifier(max_ngrams=80).fit(train_texts, train_labels)
        slow = VocabularyGreedyNgram(max_ngrams=80).fit(train_texts, train_labels)
        assert fast.ngrams_ == slow.ngrams_ and len(fast.ngrams_) > 0
        assert np.array_equal(fast.weights_, slow.weights_)


DEMO_BLIND_AUCS = {  # demo/pydoc (content hash below) before the n-gram and parallel speed-up
    "blind_bow": 0.4189086127547666, "blind_nb": 0.4242472057856673, "blind_date": 0.4908218277449047,
    "blind_ngram": 0.49341222879684415, "blind_length": 0.5457856673241288,
}
DEMO_CONTENT_HASH = "5c2b51825600af7c6948220252b96ff9df0d979ff098e2dab3ae7249f27bb47b"


def test_demo_blind_aucs_are_unchanged_by_the_speed_up_in_every_worker_setting():
    from benchmark import suite

    split = suite.ensure("demo/pydoc")
    if split.content_hash != DEMO_CONTENT_HASH:  # pydoc_data differs between Python releases
        pytest.skip("the demo text of this Python differs from the one the figures were taken on")
    serial = diagnostics.diagnose_split(split, n_jobs=1)
    parallel = diagnostics.diagnose_split(split, n_jobs=2)
    assert {k: v["auc"] for k, v in serial["baselines"].items()} == DEMO_BLIND_AUCS
    assert diagnostics.public(parallel) == diagnostics.public(serial)
    for name in BASELINES:
        assert np.array_equal(parallel["_scores"][name], serial["_scores"][name])


def test_ngram_selection_on_a_sample_of_the_training_folds_still_finds_a_marker():
    from benchmark.diagnostics.ngrams import GreedyNgramClassifier

    texts = random_texts(100, 21, 10, 20, extra=" qzxjv") + random_texts(100, 22, 10, 20)
    labels = np.array([1] * 100 + [0] * 100)
    scores = out_of_fold_scores(texts, labels, lambda: GreedyNgramClassifier(max_train_texts=60))
    assert auc(labels, scores) >= 0.95
