"""Target registry: Pythia / OPT entries, checkpoints by revision, random-init builds, local
directories, label validity of (target, split) pairs."""

from __future__ import annotations

import json

import pytest

from benchmark import suite, targets
from benchmark.cli import main
from benchmark.errors import MembenchError

PYTHIA_SIZES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
OPT_SIZES = ["125m", "350m", "1.3b", "2.7b", "6.7b", "13b"]


def test_registry_has_pythia_and_opt_with_hub_ids():
    table = targets.targets()
    for size in PYTHIA_SIZES:
        for suffix in ("", "-deduped"):
            spec = table[f"pythia-{size}{suffix}"]
            assert spec.hub_repo == f"EleutherAI/pythia-{size}{suffix}"
            assert spec.revision == "step143000" and "step99000" in spec.checkpoints
            assert spec.arch["model_type"] == "gpt_neox"
    for size in OPT_SIZES:
        spec = table[f"opt-{size}"]
        assert spec.hub_repo == f"facebook/opt-{size}" and spec.arch["model_type"] == "opt"
        assert not spec.checkpoints


def test_pythia_checkpoints_by_revision():
    spec = targets.get_target("pythia-160m@step99000")
    assert (spec.id, spec.revision, spec.hub_repo, spec.model_id) == (
        "pythia-160m@step99000", "step99000", "EleutherAI/pythia-160m", "pythia-160m")
    assert targets.get_target("pythia-160m", revision="step99000") == spec
    assert targets.get_target("pythia-160m", revision="step143000").id == "pythia-160m"
    assert len(spec.checkpoints) == 154  # step0, 1..512 log-spaced, 1000..143000 every 1000
    with pytest.raises(MembenchError, match="has no revision 'step99001'"):
        targets.get_target("pythia-160m@step99001")
    with pytest.raises(MembenchError, match="publishes no checkpoints"):
        targets.get_target("opt-125m@step1000")
    assert targets.get_target("opt-125m@" + "a" * 40).revision == "a" * 40
    with pytest.raises(MembenchError, match="unknown target 'pythia-99m'; did you mean 'pythia-70m'"):
        targets.get_target("pythia-99m")


@pytest.mark.parametrize(
    "target_id, n_params",
    [
        ("pythia-70m", 70_426_624),  # as published by EleutherAI
        ("pythia-12b-deduped", 11_846_072_320),
        ("opt-125m", 125_239_296),
        ("opt-350m", 331_196_416),
        # by hand: 2 * 32000 * 2048 + 24 * (4 * 2048^2 + 3 * 2048 * 5504 + 2 * 2048) + 2048
        ("croissantllm-1.3b", 1_345_423_360),
    ],
)
def test_random_init_shapes_without_download(target_id, n_params):
    from benchmark.commands.targets import describe_model

    model = targets.random_init_model(target_id, device="meta")
    assert describe_model(model)["parameters"] == n_params


def test_targets_cli_list_show_build(capsys):
    assert main(["targets", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["pythia-1.4b"]["arch"]["hidden_size"] == 2048 and rows["opt-13b"]["arch"]["num_hidden_layers"] == 40
    assert main(["targets", "show", "pythia-160m", "--revision", "step99000", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["id"] == "pythia-160m@step99000" and "mimir/arxiv/ngram_13_0.8" not in info["membership_splits"]  # final checkpoint only
    assert main(["targets", "show", "opt-1.3b", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "mimir/arxiv/ngram_13_0.8" not in info["membership_splits"] and "wikimia/32" in info["membership_splits"]
    assert main(["targets", "build", "pythia-70m@step1000", "--random-init", "--device", "meta", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["parameters"] == 70_426_624 and built["layers"] == 6 and built["target"] == "pythia-70m@step1000"
    assert built["first_layer_shapes"]["gpt_neox.embed_in.weight"] == [50304, 512]
    assert main(["targets", "build", "pythia-70m", "--device", "meta"]) == 2


def test_random_init_needs_a_registry_shape(local_model):
    with pytest.raises(MembenchError, match="no architecture shape.*needs a registry target"):
        targets.random_init_model(str(local_model))


def test_random_init_is_seeded_and_runs():
    import torch

    a = targets.random_init_model("demo/neox-tiny", seed=3)
    b = targets.random_init_model("demo/neox-tiny", seed=3)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)
    out = a(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert out.shape == (1, 3, a.config.vocab_size)


def _save_local_model(folder, model):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(90)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<unk>", *words])}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<unk>").save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def local_model(tmp_path_factory, tiny_neox):
    return _save_local_model(tmp_path_factory.mktemp("models") / "my-model", tiny_neox)


def test_any_local_model_directory_is_a_target(local_model):
    spec = targets.get_target(str(local_model))
    assert spec.family == "local" and spec.hub_repo is None and spec.local_path == str(local_model)
    loaded = targets.load_target(str(local_model))
    assert loaded.max_length == 128 and loaded.weights_hash != "unknown"
    assert loaded.tokenizer("w1 w2 w3")["input_ids"] == [2, 3, 4]
    # named by its folder and weights hash, never by its path
    assert spec.id == f"local/my-model-{loaded.weights_hash[:8]}"
    assert targets.get_target(str(local_model), name="lab/tiny").id == "lab/tiny"
    with pytest.raises(MembenchError, match="--revision does not apply"):
        targets.get_target(str(local_model), revision="step1")
    with pytest.raises(MembenchError, match="is a registry target id"):
        targets.get_target(str(local_model), name="pythia-70m")


def _no_config(d):
    (d / "config.json").unlink()


def _no_tokenizer(d):
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (d / name).unlink(missing_ok=True)


def _truncated(d):
    weights = d / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _no_weights(d):
    (d / "model.safetensors").unlink()


def _missing_shard(d):
    (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))


def _truncated_bin(d):
    import torch

    (d / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(1000)}, d / "pytorch_model.bin")
    data = (d / "pytorch_model.bin").read_bytes()
    (d / "pytorch_model.bin").write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("breaks, message", [
    (None, "model directory {d}/absent does not exist"),
    (_no_config, "model directory {d} has no config.json"),
    (_no_tokenizer, "model directory {d} has no tokenizer"),
    (_truncated, "weights file {d}/model.safetensors is truncated"),
    (_no_weights, "model directory {d} has no weights file"),
    (_missing_shard, "lacks weight shard(s) model-00002-of-00002.safetensors"),
    (_truncated_bin, "weights file {d}/pytorch_model.bin is truncated"),
])
def test_a_broken_model_directory_is_one_line_before_any_work(tmp_path, local_model, monkeypatch, capsys,
                                                              breaks, message):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(local_model, folder)
    target = str(folder / "absent") if breaks is None else str(folder)
    if breaks is not None:
        breaks(folder)
    monkeypatch.setattr(targets, "load_target", lambda *a, **k: pytest.fail("loaded a broken model"))
    monkeypatch.setattr(suite, "ensure", lambda *a, **k: pytest.fail("materialized a split for a broken model"))
    assert main(["run", "--target", target, "--split", "demo/pydoc"]) == 2
    err = capsys.readouterr().err
    assert message.format(d=folder) in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_local_model_never_leaves_its_path_in_records(tmp_path, local_model, monkeypatch, capsys):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    data = tmp_path / "texts.jsonl"
    data.write_text("\n".join(json.dumps({"text": " ".join(f"w{(i * 7 + j) % 90}" for j in range(5 + i % 9)),
                                          "label": i % 2}) for i in range(40)) + "\n")
    out = tmp_path / "results"
    assert main(["run", "--target", str(local_model), "--file", str(data), "--scorer", "loss",
                 "--results-dir", str(out), "--valid-for", "local/*", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["target"]["id"].startswith("local/my-model-") and record["target"]["path"] is None
    assert record["split"]["id"].startswith("file/") and record["split"]["label_validity"]["valid"]
    assert main(["run", "--target", str(local_model), "--target-name", "lab/tiny", "--file", str(data),
                 "--scorer", "loss", "--results-dir", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["target"]["id"] == "lab/tiny"
    for path in out.rglob("*.json"):
        text = path.read_text()
        assert str(tmp_path) not in text and str(local_model) not in text and "my-model\"" not in text


def test_hub_target_offline_is_one_line(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(MembenchError) as err:
        targets.load_target("pythia-70m@step1000")
    assert "EleutherAI/pythia-70m@step1000" in str(err.value) and "\n" not in str(err.value)
    assert "local model directory" in str(err.value)


def test_invalid_pairs_are_refused_unless_allowed():
    from benchmark.evaluate import check_validity

    mimir = suite.get_split("mimir/arxiv/ngram_13_0.8")
    assert check_validity(mimir, "pythia-160m", False)["valid"]
    with pytest.raises(MembenchError, match="final checkpoint only"):  # a checkpoint has not seen every member
        check_validity(mimir, "pythia-160m@step99000", False)
    with pytest.raises(MembenchError, match="not membership ground truth for target opt-1.3b"):
        check_validity(mimir, "opt-1.3b", False)
    marked = check_validity(mimir, "opt-1.3b", True)
    assert marked["valid"] is False and marked["allowed_invalid"] is True


def test_copyright_traps_hold_for_croissantllm_only():
    traps = suite.get_split("copyright-traps/seq_len_25_n_rep_10")
    assert traps.labels_valid_for("croissantllm-1.3b")
    assert not traps.labels_valid_for("pythia-160m") and not traps.labels_valid_for("opt-1.3b")
    spec = targets.get_target("croissantllm-1.3b")
    assert spec.hub_repo == "croissantllm/CroissantLLMBase" and spec.arch["model_type"] == "llama"
