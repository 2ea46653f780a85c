"""SPV-MIA and its ablations end to end on a tiny fine-tuned target (LoRA on a tiny GPT-NeoX).

The self-prompt reference is fine-tuned with the target's recipe on texts the target writes from
prompts of the split's declared pool; perturbations come from the offline seeded fallback.
"""

from __future__ import annotations

import numpy as np
import pytest
from finetune_helpers import module_home
from test_finetune import docs, make_base, pool_file, recipe, write_recipes  # noqa: F401  (module fixtures)

from benchmark.results.gate import validate_dir
from benchmark import finetune, results, runner, targets
from benchmark.attacks import spv
from benchmark.errors import MembenchError

home = module_home("spv-home")

SMALL = "n_perturbations=4,n_reference_texts=24,max_new_tokens=32,mask_model=none"


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
    out = runner.run(target, "finetune/spv-lora", specs, results_dir=home / "results", progress=False)
    return {r["scorer"]["name"].split("(")[0]: r for r in out}


def test_spv_mia_beats_chance_and_records_its_cost(records):
    record = records["spv_mia"]
    assert record["metrics"]["auc"] > 0.5, record["metrics"]["auc"]
    cost = record["scorer"]["details"]["cost"]
    assert cost["generated_tokens"] > 0 and cost["reference_training_steps"] > 0
    assert cost["reference_training_tokens"] > 0 and cost["target_forward_tokens"] > 0
    assert cost["reference_forward_tokens"] > 0 and cost["wall_seconds"] > 0
    assert record["provenance"]["usage"]["generated_tokens"] == cost["generated_tokens"]
    assert record["scorer"]["details"]["perturbations"]["source"] == "seeded-word-fallback"


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
    assert spec.extra["recipe_full"]["method"] == targets.get_target("ft/spv-lora").extra["recipe_full"]["method"]
    assert finetune.read_manifest(ref_mia["target"])["counts"]["trained"] == 24


def test_spv_records_validate(records, home):
    scan = validate_dir(home / "results")
    assert scan.ok and len(scan.recomputed) == 3, [str(r) for r in scan.rejected]


def test_definitions_by_hand():
    own = np.array([0.5, 0.2])
    perturbed = np.array([0.3, 0.1, 0.2, 0.2])
    assert spv._SPV.variation(own, perturbed, 2).tolist() == pytest.approx([-0.3, 0.0])
    rng = np.random.default_rng(0)
    starts = spv.span_starts(20, 2, 0.3, rng)
    assert len(starts) == 3 and all(b - a >= 3 for a, b in zip(starts, starts[1:]))
    a = spv.fallback_perturbations("one two three four five six", 3, 2, 0.3, ["x", "y"], seed=1)
    assert a == spv.fallback_perturbations("one two three four five six", 3, 2, 0.3, ["x", "y"], seed=1)
    assert all(len(t.split()) == 6 and t != "one two three four five six" for t in a)


def test_a_pool_sharing_texts_with_the_split_is_refused(target):
    from benchmark import attacks, suite

    split = suite.ensure("finetune/spv-lora")
    texts = split.samples["text"].tolist()[:4]
    scorer = attacks.get_scorer("spv_pv", mask_model="none", n_perturbations=2)
    with pytest.raises(MembenchError, match="shares 1 text"):
        scorer.score(attacks.ScoringInput(uids=["a"] * 4, texts=texts, pool=[texts[0], "other text here"]))
