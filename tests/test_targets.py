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
    with pytest.raises(MembenchError, match="unknown target 'pythia-99m'"):
        targets.get_target("pythia-99m")


@pytest.mark.parametrize(
    "target_id, n_params",
    [
        ("pythia-70m", 70_426_624),  # as published by EleutherAI
        ("pythia-12b-deduped", 11_846_072_320),
        ("opt-125m", 125_239_296),
        ("opt-350m", 331_196_416),
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
    assert info["id"] == "pythia-160m@step99000" and "mimir/arxiv/ngram_13_0.8" in info["membership_splits"]
    assert main(["targets", "show", "opt-1.3b", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "mimir/arxiv/ngram_13_0.8" not in info["membership_splits"] and "wikimia/32" in info["membership_splits"]
    assert main(["targets", "build", "pythia-70m@step1000", "--random-init", "--device", "meta", "--json"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["parameters"] == 70_426_624 and built["layers"] == 6 and built["target"] == "pythia-70m@step1000"
    assert built["first_layer_shapes"]["gpt_neox.embed_in.weight"] == [50304, 512]
    assert main(["targets", "build", "pythia-70m", "--device", "meta"]) == 2


def test_random_init_needs_a_registry_shape(tmp_path, tiny_neox):
    tiny_neox.config.save_pretrained(tmp_path)
    with pytest.raises(MembenchError, match="no architecture shape.*needs a registry target"):
        targets.random_init_model(str(tmp_path))


def test_random_init_is_seeded_and_runs():
    import torch

    a = targets.random_init_model("demo/neox-tiny", seed=3)
    b = targets.random_init_model("demo/neox-tiny", seed=3)
    for (_, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb)
    out = a(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert out.shape == (1, 3, a.config.vocab_size)


def test_any_local_model_directory_is_a_target(tmp_path, tiny_neox):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(90)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(["<unk>", *words])}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<unk>").save_pretrained(tmp_path)
    tiny_neox.save_pretrained(tmp_path)
    spec = targets.get_target(str(tmp_path))
    assert spec.family == "local" and spec.hub_repo is None
    loaded = targets.load_target(str(tmp_path))
    assert loaded.max_length == 128 and loaded.weights_hash != "unknown"
    assert loaded.tokenizer("w1 w2 w3")["input_ids"] == [2, 3, 4]
    with pytest.raises(MembenchError, match="--revision does not apply"):
        targets.get_target(str(tmp_path), revision="step1")


def test_hub_target_offline_is_one_line(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(MembenchError) as err:
        targets.load_target("pythia-70m@step1000")
    assert "EleutherAI/pythia-70m@step1000" in str(err.value) and "\n" not in str(err.value)
    assert "local model directory" in str(err.value)


def test_invalid_pairs_are_refused_unless_allowed():
    from benchmark.runner import check_validity

    mimir = suite.get_split("mimir/arxiv/ngram_13_0.8")
    assert check_validity(mimir, "pythia-160m@step99000", False)["valid"]
    with pytest.raises(MembenchError, match="not membership ground truth for target opt-1.3b"):
        check_validity(mimir, "opt-1.3b", False)
    marked = check_validity(mimir, "opt-1.3b", True)
    assert marked["valid"] is False and marked["allowed_invalid"] is True
