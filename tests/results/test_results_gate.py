"""The publication gate: what it writes into records (display names, views on public splits only,
its stamp), and that it is the one step that decides them (issues 22, 24 and 27)."""

from __future__ import annotations

import json

import pytest

from benchmark import attacks
from benchmark.errors import MembenchError
from benchmark.attacks import Scorer
from benchmark.cli import main
from benchmark.results import read, write
from benchmark.results.gate import Catalog, publish, validate_dir
from synthetic_results import synthetic_record
from benchmark.site import build_site
from site_helpers import local_home, materialize_local_split, record_on_split  # noqa: F401 - a fixture


def _other(value):
    """A value other than a parameter's default, of its type (None when there is none to try)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 if value else 0.5
    if isinstance(value, str):
        return value + "-other"
    return None


def test_two_settings_or_ablations_of_one_method_never_share_a_display_name():
    """Over every scorer class membench ships: the default setting and each parameter moved off its
    default, each named by the gate; no two names are alike."""
    catalog = Catalog()
    names = {}
    for sid, cls in sorted(catalog.classes.items()):
        settings = [{}] + [{k: _other(d)} for k, (_, d) in attacks.specs.parameters(cls).items() if _other(d) is not None]
        for params in settings:
            try:
                attacks.canonical_params(cls, params)
            except (ValueError, TypeError, MembenchError):  # a value the class refuses (e.g. an unknown base scorer)
                continue
            rec, _, _ = synthetic_record("synthetic/n", "pythia-160m", sid, n=20)
            rec["scorer"]["params"] = params
            name = catalog.describe(rec)["name"]
            assert name not in names, f"{sid} {params} and {names.get(name)} are both named {name!r}"
            names[name] = (sid, params)
    assert "SPV-MIA" in names and "SPV-MIA: probabilistic variation only" in names
    assert "SPV-MIA: self-prompt reference only" in names and "Min-K% Prob (k=0.4)" in names


class ToyMethod(Scorer):
    """Toy-MIA (Doe et al. 2031): score(x) = mean l_t(x) + a * (number of words of x)."""

    name = "toy_method"
    title = "Toy-MIA"
    citation = "Doe et al. 2031 (arXiv 3101.00001)"
    default_set = "features"

    def __init__(self, a: float = 0.1):
        self.a = a


class ToyPart(ToyMethod):
    """score(x) = mean l_t(x): Toy-MIA without its length term."""

    name = "toy_part"
    title = "Toy-MIA: likelihood only"
    method = "toy_method"


@pytest.fixture()
def toys(monkeypatch):
    registry = {**attacks.scorers(), "toy_method": ToyMethod, "toy_part": ToyPart}
    monkeypatch.setattr(attacks, "scorers", lambda: registry)
    return registry


def test_settings_and_ablations_have_their_own_names_and_pages_with_the_base_method(toys, tmp_path):
    root = tmp_path / "results"
    for seed, (name, params) in enumerate((("toy_method", {"a": 0.1}), ("toy_method(a=0.5)", {"a": 0.5}),
                                           ("toy_part", {"a": 0.1}))):
        rec, uids, scores = synthetic_record("synthetic/toy", "pythia-160m", name, n=60, seed=seed)
        rec["scorer"]["params"] = params
        write(root, rec, uids, scores)
    report = publish(root)
    display = {r["scorer"]["name"]: r["display"] for _, r in report.records}
    assert {n: d["name"] for n, d in display.items()} == {
        "toy_method": "Toy-MIA", "toy_method(a=0.5)": "Toy-MIA (a=0.5)", "toy_part": "Toy-MIA: likelihood only"}
    part = display["toy_part"]
    assert (part["method"], part["method_title"], part["method_citation"]) == (
        "toy_method", "Toy-MIA", "Doe et al. 2031 (arXiv 3101.00001)")
    assert part["method_definition"].startswith("Toy-MIA (Doe et al. 2031)") and part["definition"].startswith("score(x)")
    assert display["toy_method(a=0.5)"]["setting"] == "a=0.5" and display["toy_method"]["defaults"] == {"a": 0.1}
    site = build_site(root, tmp_path / "site").out_dir
    setting = (site / "scorer" / "toy_method--a-0.5.html").read_text()
    assert "<h1>Toy-MIA (a=0.5)" in setting and "A setting of <strong>Toy-MIA</strong>" in setting
    assert "Doe et al. 2031 (arXiv 3101.00001)" in setting and "score(x) = mean l_t(x) + a * (number" in setting
    ablation = (site / "scorer" / "toy_part.html").read_text()
    assert "<h1>Toy-MIA: likelihood only" in ablation and "is an ablation or variant of <strong>Toy-MIA</strong>" in ablation
    assert "Definition of Toy-MIA</h3>" in ablation and "a * (number of words of x)" in ablation
    catalog = (site / "scorers.html").read_text()
    section = catalog.split('id="method-toy_method"')[1].split("</section>")[0]  # one method, its ablation, its settings
    assert section.count("<a href=") == 3 and '<span class="tag">ablation</span> <strong>Toy-MIA: likelihood only' in section


def test_a_submission_is_named_and_described_by_its_submission_yaml(tmp_path):
    root = tmp_path / "results"
    rec, uids, scores = synthetic_record("synthetic/sub", "pythia-160m", "ratio_v2", kind="submission", n=60)
    rec["submission"] = {"name": "ratio_v2", "description": "zlib ratio, recalibrated", "authors": ["Ada"],
                         "version": "2"}
    write(root, rec, uids, scores)
    (_, record), = publish(root).records
    d = record["display"]
    assert (d["name"], d["definition"], d["definition_source"]) == ("ratio_v2", "zlib ratio, recalibrated", "submission.yaml")
    assert "author = {Ada}" in d["bibtex"]


def test_views_are_written_for_public_splits_only_and_the_gate_is_idempotent(local_home, tmp_path):
    split = materialize_local_split()
    root = tmp_path / "results"
    paths = {}
    for private in (False, True):
        rec, uids, scores = record_on_split(split, "loss" if not private else "zlib", strength=0.8, seed=int(private))
        rec["split"]["private"] = private
        paths[private] = write(root, rec, uids, scores)
    report = publish(root)
    assert report.ok and len(report.recomputed) == 2 and len(report.stamped) == 2
    public, private = read(paths[False]), read(paths[True])
    assert set(public["views"]) == {"n", "histogram", "length_buckets", "bucket_resamples", "length_stats"}
    assert "views" not in private and private["gate"]["recomputed"] is True
    before = {p: p.read_bytes() for p in paths.values()}
    again = publish(root)
    assert again.stamped == [] and {p: p.read_bytes() for p in paths.values()} == before  # nothing changes
    # run where the split is not materialized: what an earlier gate run found for the same content stays
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMBENCH_HOME", str(other))
        elsewhere = publish(root)
    assert elsewhere.stamped == [] and elsewhere.recomputed == []
    assert {p: p.read_bytes() for p in paths.values()} == before


def test_a_record_the_gate_refuses_loses_its_stamp_and_no_reader_shows_it(local_home, tmp_path, capsys):
    split = materialize_local_split()
    root = tmp_path / "results"
    rec, uids, scores = record_on_split(split, "loss")
    path = write(root, rec, uids, scores)
    assert main(["results", "validate", str(root)]) == 0
    assert build_site(root, tmp_path / "site").n_results == 1
    record = json.loads(path.read_text())
    record["metrics"]["auc"] = round(record["metrics"]["auc"] + 0.02, 4)
    record.pop("gate")  # a forger would drop or refresh the stamp: the gate recomputes anyway
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["results", "validate", str(root)]) == 1
    assert "field 'metrics.auc'" in capsys.readouterr().out
    assert "display" not in json.loads(path.read_text())
    report = build_site(root, tmp_path / "site")
    assert report.n_results == 0 and report.rejected[0].field == "gate"


def test_validate_check_writes_nothing(local_home, tmp_path):
    rec, uids, scores = synthetic_record("synthetic/c", "pythia-160m", "loss", n=60)
    path = write(tmp_path / "r", rec, uids, scores)
    before = path.read_bytes()
    assert main(["results", "validate", str(tmp_path / "r"), "--check"]) == 0
    assert path.read_bytes() == before and validate_dir(tmp_path / "r").ok
