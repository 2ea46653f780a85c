"""The warm path: a run whose features are cached loads no model, no tokenizer, no torch; the
weights hash is memoized per file by size and mtime, re-read when those change or on --verify."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd
import pytest

from benchmark import attacks, features, targets
from benchmark.hashing import sha256_file
from benchmark.targets.fingerprint import FileHashes

TEXTS = [f"membership text number {i}: " + "the quick brown fox jumps over the lazy dog " * (1 + i % 5)
         for i in range(20)]

# Runs one membench command, then reports on stderr which heavy modules the process imported.
PROBE = """
import json, sys
from benchmark.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\n" + json.dumps({"rc": code, "torch": "torch" in sys.modules,
                                     "transformers": "transformers" in sys.modules}) + "\\n")
"""


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    """One MEMBENCH_HOME for the runs of the tiny model on the demo split (features computed
    once, then warm)."""
    return tmp_path_factory.mktemp("demo-home")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, demo_home):
    """A local model folder: a random tiny GPT-NeoX (context 256 tokens: some demo texts are
    longer) and a BPE tokenizer trained on the demo texts (fast, so it reports offsets)."""
    from model_helpers import tiny_neox_folder

    from benchmark import suite

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMBENCH_HOME", str(demo_home))
        texts = suite.ensure("demo/pydoc").samples["text"].tolist()
    return tiny_neox_folder(tmp_path_factory.mktemp("tiny-model"), texts, context=256)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _split():
    uids = [f"u{i:03d}" for i in range(len(TEXTS))]
    return SimpleNamespace(id="test/warm", content_hash="c1", samples=pd.DataFrame({"uid": uids, "text": TEXTS}))


def _membench(args, env) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=900)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["rc"] == 0, proc.stderr[-2000:]
    return report, proc.stdout


def test_a_warm_run_imports_neither_torch_nor_transformers(tiny_dir, demo_home, tmp_path):
    env = {**os.environ, "MEMBENCH_HOME": str(demo_home), "HF_HUB_OFFLINE": "1"}
    args = ["run", "--target", str(tiny_dir), "--split", "demo/pydoc", "--allow-invalid",
            "--results-dir", str(tmp_path / "results"), "--json"]  # the default set (attacks.FEATURE_SCORERS)
    cold, cold_out = _membench(args, env)
    assert cold["torch"]  # it had features to compute
    warm, warm_out = _membench(args, env)
    assert warm == {"rc": 0, "torch": False, "transformers": False}
    cold_records, warm_records = json.loads(cold_out), json.loads(warm_out)
    assert [r["scorer"]["name"] for r in warm_records] == list(attacks.FEATURE_SCORERS)  # in registry order
    for a, b in zip(cold_records, warm_records):
        assert a["metrics"]["auc"] == b["metrics"]["auc"]
        assert a["target"]["weights_sha256"] == b["target"]["weights_sha256"]
    # some demo texts run past the 256-token context: truncated samples are flagged per sample and counted
    record = warm_records[0]
    per_sample = pd.read_parquet(next((tmp_path / "results").rglob(record["per_sample"]["file"])))
    assert record["counts"]["n_truncated"] == int(per_sample["truncated"].sum()) > 0
    assert record["counts"]["context_rule"] == record["target"]["context_rule"] == "truncate-head"


def test_warm_features_need_neither_model_nor_tokenizer(home, tiny_dir):
    split = _split()
    first = targets.load_target(str(tiny_dir))
    counter: dict = {}
    a = features.get_features(first, split, counter=counter)
    assert counter["forward_passes"] > 0 and first.loaded
    size = first.vocab_size  # what DC-PDD asks on a cold run: now memoized by the tokenizer's hash
    again = targets.load_target(str(tiny_dir))
    counter = {}
    b = features.get_features(again, split, counter=counter)
    assert counter.get("forward_passes", 0) == 0
    assert not again.loaded and "tokenizer" not in vars(again)  # nothing was loaded
    assert again._hashes.hashed == []  # nor re-hashed: size and mtime vouched for every file
    assert again.vocab_size == size == len(first.tokenizer) and "tokenizer" not in vars(again)
    for name in features.STATS:
        assert (a.values[name] == b.values[name]).all()
    assert (a.char_end == b.char_end).all() and (a.text_chars == b.text_chars).all()


def test_a_changed_weights_file_is_rehashed_and_invalidates_the_cache(home, tiny_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    split = _split()
    before = targets.load_target(str(model))
    features.get_features(before, split)
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # a bit of the last tensor: same size, new content
    weights.write_bytes(bytes(data))
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # and a new mtime
    after = targets.load_target(str(model))  # (naming a local folder reads the memo too: it re-hashes there)
    assert after.weights_hash != before.weights_hash
    memo = FileHashes(model).files["model.safetensors"]
    assert memo["mtime_ns"] == stat.st_mtime_ns + 5_000_000_000 and memo["sha256"] == sha256_file(weights)
    counter: dict = {}
    features.get_features(after, split, counter=counter)
    assert counter["forward_passes"] > 0  # a new cache key: the old features are not reused


def test_verify_rehashes_a_change_that_kept_size_and_mtime(home, tiny_dir, tmp_path, caplog):
    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    known = targets.load_target(str(model)).weights_hash
    weights = model / "model.safetensors"
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a forger restores the mtime
    assert FileHashes(model).folder_hash(["*.safetensors"]) == known  # trusted by size and mtime
    with caplog.at_level("WARNING"):
        verified = targets.load_target(str(model), verify=True).weights_hash
    assert verified != known and "without a change of size or modification time" in caplog.text
    assert targets.load_target(str(model)).weights_hash == verified  # the memo now holds the truth


def test_sliding_window_run_scores_every_token_and_says_so(demo_home, tiny_dir, tmp_path, monkeypatch):
    from benchmark.evaluate import RunSpec, run

    monkeypatch.setenv("MEMBENCH_HOME", str(demo_home))  # truncate-head features are cached there

    head, window = (run(RunSpec.build(str(tiny_dir), "demo/pydoc", ["loss", "zlib"], results_dir=tmp_path / rule,
                                      allow_invalid=True, progress=False, context_rule=rule)).records
                    for rule in ("truncate-head", "sliding-window"))
    assert head[0]["counts"]["n_truncated"] > 0 and window[0]["counts"]["n_truncated"] == 0
    assert [r["target"]["context_rule"] for r in window] == ["sliding-window"] * 2
    assert head[0]["metrics"]["auc"] != window[0]["metrics"]["auc"]  # the long texts were scored differently
    per_sample = pd.read_parquet(next((tmp_path / "sliding-window").rglob(window[0]["per_sample"]["file"])))
    assert not per_sample["truncated"].any()


def test_records_derived_on_a_calibration_rest_keep_the_truncation_flags(demo_home, tiny_dir, tmp_path, monkeypatch):
    from benchmark import results, suite
    from benchmark.evaluate import RunSpec, run

    monkeypatch.setenv("MEMBENCH_HOME", str(demo_home))  # truncate-head features are cached there
    out = tmp_path / "results"
    (parent,) = run(RunSpec.build(str(tiny_dir), "demo/pydoc", ["loss"], results_dir=out, allow_invalid=True,
                                  progress=False, calibration="cal10")).records
    derived = [r for p in out.rglob("*.json") if (r := results.read(p)).get("evaluation_subset")]
    assert len(derived) == 1
    (rec,) = derived
    rest = set(suite.calibration.select(suite.ensure("demo/pydoc"), "cal10").rest)
    whole = pd.read_parquet(next(out.rglob(parent["per_sample"]["file"]))).set_index("uid")
    table = pd.read_parquet(next(out.rglob(rec["per_sample"]["file"]))).set_index("uid")
    assert set(table.index) == rest
    assert (table["truncated"] == whole.loc[table.index, "truncated"]).all()  # the parent's flags, row for row
    assert rec["counts"]["n_truncated"] == int(table["truncated"].sum()) > 0
    assert rec["counts"]["context_rule"] == parent["counts"]["context_rule"] == "truncate-head"


def test_parameters_are_counted_without_loading_the_weights(home, tiny_dir, tmp_path):
    """From safetensors headers; for .bin weights from a memo kept by the weights' hash after the
    first count (the loaded model's own count, tied tensors once)."""
    import torch
    from transformers import AutoModelForCausalLM

    handle = targets.load_target(str(tiny_dir))
    counted = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_dir).parameters())
    assert handle.n_parameters == counted and not handle.loaded
    bin_dir = tmp_path / "bin-model"
    shutil.copytree(tiny_dir, bin_dir)
    (bin_dir / "model.safetensors").unlink()
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    torch.save(model.state_dict(), bin_dir / "pytorch_model.bin")
    first = targets.load_target(str(bin_dir))
    assert first.n_parameters == counted and first.loaded  # counted once from the model
    again = targets.load_target(str(bin_dir))
    assert again.n_parameters == counted and not again.loaded  # then from the memo
