"""SPV-MIA and its ablations end to end on a tiny fine-tuned target (LoRA on a tiny GPT-NeoX).

The self-prompt reference is fine-tuned with the target's recipe made lighter (the authors'
ratios: a fifth of the epochs, half the learning rate) on texts the target writes from prompts
of the split's declared pool; perturbations come from the word-swap substitute, asked for
explicitly (no T5 offline), so it shows in the records' names.
"""

from __future__ import annotations

import numpy as np
import pytest
from finetune_helpers import module_home
from finetune_helpers import docs, make_base, pool_file, recipe, write_recipes  # noqa: F401  (module fixtures)

from benchmark import attacks, finetune, results, targets
from benchmark.evaluate import RunSpec, run
from benchmark.results.gate import Catalog, validate_dir
from benchmark.attacks import spv
from benchmark.errors import MembenchError

home = module_home("spv-home")

SMALL = "n_perturbations=4,n_reference_texts=24,max_new_tokens=32,perturbation=word-swap"


@pytest.fixture(scope="module")
def target(home, docs, pool_file):  # noqa: F811
    base = make_base(home / "bases" / "neox", "gpt_neox", docs["text"].tolist())
    entry = recipe("spv-lora", base, pool_file, method={"kind": "lora", "target_modules": [
        "query_key_value", "dense_h_to_4h", "dense_4h_to_h"]},
        sizes={"members": 48, "nonmembers": 48, "reference_pool": 48},
        train={"epochs": 10, "lr": 1e-2, "batch_size": 8, "block_size": 64})
    file = write_recipes(home / "spv.yaml", [entry])
    finetune.finetune("spv-lora", recipes_file=file, progress=False)
    return "ft/spv-lora"


@pytest.fixture(scope="module")
def records(home, target):
    specs = [f"{name}:{SMALL}" for name in ("spv_mia", "spv_reference", "spv_pv")]
    out = run(RunSpec.build(target, "finetune/spv-lora", specs, results_dir=home / "results", progress=False)).records
    return {r["scorer"]["name"].split("(")[0]: r for r in out}


def test_spv_mia_beats_chance_and_records_its_cost(records):
    record = records["spv_mia"]
    assert record["metrics"]["auc"] > 0.5, record["metrics"]["auc"]
    cost = record["scorer"]["details"]["cost"]
    assert cost["generated_tokens"] > 0 and cost["reference_training_steps"] > 0
    assert cost["reference_training_tokens"] > 0 and cost["target_forward_tokens"] > 0
    assert cost["reference_forward_tokens"] > 0 and cost["wall_seconds"] > 0
    assert record["provenance"]["usage"]["generated_tokens"] == cost["generated_tokens"]
    assert record["scorer"]["details"]["perturbations"]["source"].startswith("word-swap")
    assert "perturbation=word-swap" in record["scorer"]["name"]


def test_ablations_are_scorers_of_their_own_and_share_the_cached_reference(records):
    ref_mia = records["spv_mia"]["scorer"]["details"]["reference"]
    ref_plain = records["spv_reference"]["scorer"]["details"]["reference"]
    assert ref_mia["target"] == ref_plain["target"] and ref_plain["reused"] and not ref_mia["reused"]
    assert records["spv_reference"]["scorer"]["details"]["cost"]["generated_tokens"] == 0
    assert "reference" not in records["spv_pv"]["scorer"]["details"]
    for name in ("spv_reference", "spv_pv"):
        assert 0 <= records[name]["metrics"]["auc"] <= 1
    # the reference is a target of its own, trained with the target's recipe
    spec = targets.get_target(ref_mia["target"])
    own = targets.get_target("ft/spv-lora").extra["recipe_full"]
    assert spec.extra["recipe_full"]["method"] == own["method"]
    # lighter, as the authors train it: 10 epochs -> 2, lr 1e-2 -> 5e-3; everything else the target's
    assert spec.extra["recipe_full"]["train"]["epochs"] == 2 == ref_mia["recipe"]["epochs"]
    assert spec.extra["recipe_full"]["train"]["lr"] == pytest.approx(5e-3) == ref_mia["recipe"]["lr"]
    assert spec.extra["recipe_full"]["train"]["block_size"] == own["train"]["block_size"]
    assert finetune.read_manifest(ref_mia["target"])["counts"]["trained"] == 24
    assert ref_mia["prompt_tokens"] == 16 and ref_mia["n_texts"] == 24


def test_spv_records_validate(records, home):
    scan = validate_dir(home / "results")
    assert scan.ok and len(scan.recomputed) == 3, [str(r) for r in scan.rejected]


def test_definitions_by_hand():
    own = np.array([0.5, 0.2])
    perturbed = np.array([0.3, 0.1, 0.2, 0.2])
    assert spv._SPV.probabilistic_variation(own, perturbed, 2).tolist() == pytest.approx([-0.3, 0.0])
    # the reference's no-calibration path: mean_j (L(x~_j) - L(x)) / L(x), not probabilities
    loss, perturbed_loss = np.array([2.0, 4.0]), np.array([3.0, 2.0, 4.0, 6.0])
    assert spv._SPV.relative_variation(loss, perturbed_loss, 2).tolist() == pytest.approx([0.25, 0.25])
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    a = spv.word_swap_perturbations(text, 3, 2, 0.3, ["XX", "YY"], seed=1)
    assert a == spv.word_swap_perturbations(text, 3, 2, 0.3, ["XX", "YY"], seed=1)
    # int(0.3 * 14 / (2 + 2)) = 1 span of 2 words, filled with 2 vocabulary words
    assert all(t != text and sum(w in ("XX", "YY") for w in t.split(" ")) == 2 for t in a)


def test_the_no_calibration_ablation_is_the_relative_loss_variation(records):
    """spv_pv's scores are RV_target recomputed from the target's losses on the same perturbations."""
    record = records["spv_pv"]
    assert record["scorer"]["params"]["variation"] == "relative-loss"
    assert attacks.get_scorer("spv_pv").variation == "relative-loss"  # the default: not in the setting's name
    assert "variation" not in record["scorer"]["name"]
    shown = Catalog().describe(record)["method_details"]  # what the gate writes and the site shows
    assert "relative loss variation" in shown["variation"] and "calibration: false" in shown["variation"]
    assert "substitute asked for by name" in shown["perturbation source"]


def test_a_pool_sharing_texts_with_the_split_is_refused(target):
    from benchmark import suite

    split = suite.ensure("finetune/spv-lora")
    texts = split.samples["text"].tolist()[:4]
    scorer = attacks.get_scorer("spv_pv", perturbation="word-swap", n_perturbations=2)
    with pytest.raises(MembenchError, match="shares 1 text"):
        scorer.score(attacks.ScoringInput(uids=["a"] * 4, texts=texts, pool=[texts[0], "other text here"]))
