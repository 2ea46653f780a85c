"""Private splits: a secret assignment kept under MEMBENCH_HOME, and what it buys.

A scorer that rebuilds demo/pydoc's assignment from the public seed and the builder (both in
the repository, the text in every Python's pydoc_data) reaches AUC 1.0 there: public labels
are public, and no sandbox can stop a scorer from carrying them. On demo/pydoc-private the
same scorer gains nothing.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from submission_helpers import run_spec

from benchmark import suite, targets
from benchmark.home import home, secret_file
from benchmark.submissions import evaluate, isolation_problem

REPO = Path(__file__).resolve().parents[2]

# The demo builder, carried inside a submission: what a cheater would do with public code.
REBUILD = '''\
import re
import numpy as np
from benchmark.api import Scorer


def _members(seed):
    from pydoc_data import topics
    rule = re.compile(r"^\\s*[*=\\-~^]{3,}\\s*$")
    rng = np.random.default_rng(seed)
    out = []
    for name in sorted(topics.topics):
        words = " ".join(l for l in topics.topics[name].splitlines() if not rule.match(l)).split()
        start = 0
        while True:
            length = int(rng.integers(32, 257))
            chunk = words[start:start + length]
            if len(chunk) < 32:
                break
            out.append(" ".join(chunk))
            start += length
    texts = list(dict.fromkeys(out))
    order = np.random.default_rng(seed + 1).permutation(len(texts))
    return {texts[i] for i in order[: int(0.4 * len(texts))]}


class Rebuild(Scorer):
    name = "public_seed_rebuild"
    requires = ()

    def score(self, inputs):
        members = _members(20240501)
        return np.array([1.0 if t in members else 0.0 for t in inputs.texts])
'''

YAML = """name: public_seed_rebuild
version: "1"
authors: [cheater]
description: rebuilds the demo assignment from its public seed
threat_model: embeds public labels
capabilities: []
license: MIT
"""


def test_private_seed_is_secret_and_kept_under_membench_home():
    split = suite.ensure("demo/pydoc-private")
    seed_file = secret_file("demo/pydoc-private.seed")
    assert seed_file.is_file() and seed_file.resolve().is_relative_to(home().resolve())
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(seed_file.parent.stat().st_mode) == 0o700
    seed = seed_file.read_text().strip()
    manifest = (split.path / "manifest.json").read_text()
    assert json.loads(manifest)["source"]["seed"] == "secret" and seed not in manifest
    assert seed not in (REPO / "benchmark" / "suite" / "splits.yaml").read_text()
    spec = suite.get_split("demo/pydoc-private")
    assert spec.extra.get("private") is True and spec.valid_targets == ("demo/neox-tiny-private",)
    assert not suite.get_split("demo/pydoc").labels_valid_for("demo/neox-tiny-private")
    # the same seed on the next build: the labels are stable on this machine
    assert suite.demo.secret_seed("demo/pydoc-private") == int(seed)


def test_the_private_target_trains_on_the_private_members():
    from benchmark.targets import _demo_training_texts

    texts, what, tokenizer_texts = _demo_training_texts("demo/neox-tiny-private")
    split = suite.ensure("demo/pydoc-private")
    labels = split.labels()
    members = set(split.samples.loc[split.samples["uid"].map(labels) == 1, "text"])
    assert set(texts) == members and what == "members of demo/pydoc-private"
    # its tokenizer learns from the split's pool: no member and no non-member of the split
    assert tokenizer_texts and not set(tokenizer_texts) & set(split.samples["text"])
    assert targets.get_target("demo/neox-tiny-private").family == "demo"


@pytest.mark.skipif(isolation_problem() is not None, reason="no full jail here")
def test_the_public_seed_rebuild_wins_on_the_public_split_and_nothing_on_the_private(tmp_path):
    sub = tmp_path / "public_seed_rebuild"
    sub.mkdir()
    (sub / "scorer.py").write_text(REBUILD)
    (sub / "submission.yaml").write_text(YAML)
    public = evaluate(sub, run_spec("demo/pydoc", "demo/neox-tiny", tmp_path / "r"), log_path=tmp_path / "log")
    private = evaluate(sub, run_spec("demo/pydoc-private", "demo/neox-tiny-private", tmp_path / "r"),
                       log_path=tmp_path / "log")
    assert public["metrics"]["auc"] == 1.0 and public["split"]["private"] is False
    assert private["split"]["private"] is True
    assert 0.35 < private["metrics"]["auc"] < 0.65
