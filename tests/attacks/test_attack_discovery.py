"""Attacks are discovered from the attacks folder: a new feature-based attack is one file.

Every built-in scorer carries the class attributes of the shared contract (title, method,
citation, default set); the default sets and the `--scorer` help are views of the registry;
a name or a title is registered once; and a scorer file dropped into a (temporary) attacks
folder is discovered, listed in `membench run --help` and scored by `membench run`."""

from __future__ import annotations

import json
import re
import sys
import textwrap

import pytest

from benchmark import attacks
from benchmark.api import DEFAULT_SETS, Scorer
from benchmark.attacks import registry
from benchmark.cli import main
from benchmark.errors import MembenchError


def test_every_built_in_scorer_says_what_it_is():
    classes = attacks.scorers()
    assert len(classes) >= 18
    titles = [cls.title for cls in classes.values()]
    assert all(titles) and len(set(titles)) == len(titles)  # a reader can tell every class apart
    for name, cls in classes.items():
        if name == "de_cop":  # needs a chat target and a declared paraphrase file: in no default set
            assert cls.default_set is None
        else:
            assert cls.default_set in DEFAULT_SETS, name
        assert cls.method in classes, f"{name}: method {cls.method!r} is not a registered scorer"
        assert classes[cls.method].method == cls.method, f"{name}: its method is itself a variant"
        assert (cls.__doc__ or sys.modules[cls.__module__].__doc__), f"{name} has no definition"
        if name != "calibrated":  # membench's own operating-point rule: no paper to cite
            # a checkable id: arXiv, or OpenReview for a paper that has no arXiv version (the Infilling score)
            assert re.search(r"\((arXiv \d{4}\.\d{4,5}|.*OpenReview [A-Za-z0-9_-]{10})\)$", cls.citation), \
                f"{name}: {cls.citation!r}"
    spv = {name: classes[name].title for name in ("spv_mia", "spv_reference", "spv_pv")}
    assert spv == {"spv_mia": "SPV-MIA", "spv_reference": "SPV-MIA: self-prompt reference only",
                   "spv_pv": "SPV-MIA: probabilistic variation only"}
    assert {classes[n].method for n in spv} == {"spv_mia"}


def test_the_default_sets_are_views_of_the_registry():
    for view, which in ((attacks.FEATURE_SCORERS, "features"), (attacks.MODEL_SCORERS, "model"),
                        (attacks.FIT_SCORERS, "fit"), (attacks.GROUP_SCORERS, "groups"),
                        (attacks.SPV_SCORERS, "finetune")):
        assert view == attacks.default_set(which)
        assert view and all(attacks.scorer_class(n).default_set == which for n in view)
    assert set(attacks.FEATURE_SCORERS) == {"loss", "zlib", "min_k", "min_k_plus_plus", "surp"}
    assert "dc_pdd" in attacks.MODEL_SCORERS  # a frequency table and a start-token pass: not features only
    assert all("fit" in attacks.scorer_class(n).requires for n in attacks.FIT_SCORERS)
    with pytest.raises(MembenchError, match="unknown default set 'feature'"):
        attacks.default_set("feature")


def test_a_name_or_a_title_is_registered_once():
    class Twin(Scorer):
        name = "loss"
        title = "Another LOSS"

    class TitleTwin(Scorer):
        name = "loss_again"
        title = "LOSS"

    class Nameless(Scorer):
        title = "Nameless"

    class OddSet(Scorer):
        name = "odd_set"
        default_set = "feature"

    assert registry.register(attacks.scorer_class("loss")) is attacks.scorer_class("loss")  # the same class: a no-op
    with pytest.raises(MembenchError, match="two scorer classes are named 'loss'"):
        registry.register(Twin)
    with pytest.raises(MembenchError, match="share the title 'LOSS'"):
        registry.register(TitleTwin)
    with pytest.raises(MembenchError, match="has no `name`"):
        registry.register(Nameless)
    with pytest.raises(MembenchError, match="default_set 'feature' is not one of"):
        registry.register(OddSet)
    assert "loss_again" not in attacks.scorers() and attacks.scorer_class("loss") is not Twin


NEW_ATTACK = '''\
"""Max log-prob (a test attack): the largest l_t of a text, higher = member."""

import numpy as np

from benchmark.api import Scorer, ScoringInput


class MaxLogprob(Scorer):
    """score(x) = max_t l_t over the scored tokens of x."""

    name = "max_logprob"
    title = "Max log-prob"
    method = "max_logprob"
    citation = "A test of membench (arXiv 0000.00000)"
    default_set = "features"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return self.per_sample(inputs, lambda s, _: float(np.max(s["logprob"])))
'''


@pytest.fixture
def attack_folder(tmp_path, monkeypatch):
    """A temporary attacks folder holding one new attack file, searched by discovery; the
    registry and the module table are restored afterwards."""
    folder = tmp_path / "attacks"
    folder.mkdir()
    (folder / "max_logprob.py").write_text(NEW_ATTACK)
    monkeypatch.setattr(attacks, "__path__", [*attacks.__path__, str(folder)])
    yield folder
    registry.unregister("max_logprob")
    sys.modules.pop("benchmark.attacks.max_logprob", None)


def test_a_dropped_attack_file_is_discovered_listed_and_scored(attack_folder, tmp_path, monkeypatch, capsys):
    from model_helpers import tiny_neox_folder

    assert "max_logprob" in attacks.discover()
    assert attacks.scorer_class("max_logprob").title == "Max log-prob"
    assert "max_logprob" in attacks.default_set("features")

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "max_logprob" in " ".join(capsys.readouterr().out.split())

    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    texts = [f"text number {i} about {w} and more {w}" for i, w in enumerate(["cats", "dogs", "owls", "bees"] * 5)]
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": i % 2}) + "\n" for i, t in enumerate(texts)))
    model = tiny_neox_folder(tmp_path / "model", texts)
    out = tmp_path / "results"
    assert main(["run", "--target", str(model), "--file", str(data), "--scorer", "max_logprob", "--scorer", "loss",
                 "--results-dir", str(out), "--json"]) == 0
    records = {r["scorer"]["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(records) == {"max_logprob", "loss"}
    assert 0.0 <= records["max_logprob"]["metrics"]["auc"] <= 1.0
    assert records["max_logprob"]["counts"]["n_scored"] == len(texts)
