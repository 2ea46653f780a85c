"""Each record's method details (where perturbations, neighbours and token frequencies came from,
how a reference was trained) and flags (an unconverged fit) reach the record's ``display`` block
through the publication gate, in the scorer class's words (``Scorer.method_details``), and the
site shows them (issue 26 items 1 and 4). The details fed here are the ones the scorers write
(taken from their own code paths where that needs no model)."""

from __future__ import annotations

from benchmark import attacks
from benchmark.api import ScoringInput
from benchmark.attacks.convergence import convergence_block
from benchmark.results.gate import Catalog
from benchmark.results.records import Display
from synthetic_results import synthetic_record

TEXTS = ["def f(x):\n    return x + 1", "the quick brown fox jumps over the lazy dog again and again today"]
POOL = ["a pool text of public words", "another pool text with other words here"]


def _describe(scorer: str, details: dict | None, params: dict | None = None, **extra) -> dict:
    record, _, _ = synthetic_record("demo/x", "demo/neox-tiny", scorer, extra=extra or None)
    record["scorer"]["params"] = params or {}
    if details is not None:
        record["scorer"]["details"] = details
    display = Catalog().describe(record)
    Display.model_validate(display)  # the record model accepts what the gate writes
    return display


def test_spv_perturbation_source_and_reference_recipe_are_in_the_display_block():
    scorer = attacks.get_scorer("spv_mia", perturbation="word-swap", n_perturbations=2)
    _, info = scorer.perturbations(TEXTS, POOL)  # the details the scorer records
    reference = {"target": "ft/x-spvref-abc", "reused": False, "n_texts": 24, "prompt_tokens": 16,
                 "max_new_tokens": 112, "generated_to": "128 tokens (the target recipe's block size)",
                 "recipe": {"from": "ft/x", "epochs": 2, "lr": 5e-5, "target_epochs": 10, "target_lr": 1e-4}}
    display = _describe("spv_mia(n_perturbations=2,perturbation=word-swap)", {"perturbations": info,
                        "reference": reference}, scorer.params())
    details = display["method_details"]
    assert "substitute asked for by name" in details["perturbation source"] and "not T5" in details["perturbation source"]
    assert "2 epochs (target: 10)" in details["reference recipe"] and "16-token prompts" in details["reference recipe"]
    assert display["name"] == "SPV-MIA (n_perturbations=2, perturbation=word-swap)"
    t5 = _describe("spv_mia", {"perturbations": {"source": "t5-span-fill:t5-base", "m": 10, "span_length": 2,
                                                 "mask_rate": 0.3, "buffer_size": 1, "top_p": 1.0, "unfilled": 3,
                                                 "max_tries": 100, "span_count": "int(0.3 * pieces / (2 + 2 * 1))"}})
    assert t5["method_details"]["perturbation source"].startswith("T5 span filling with t5-base")
    assert "3 left unperturbed" in t5["method_details"]["perturbation source"]
    old = _describe("spv_pv", {"perturbations": {"source": "seeded-word-fallback", "m": 10}}, {"n_perturbations": 10})
    assert old["method_details"]["perturbation source"].startswith("seeded-word-fallback (not T5")
    assert "probability space" in old["method_details"]["variation"]
    pv = _describe("spv_pv", {}, attacks.get_scorer("spv_pv").params())
    assert "calibration: false" in pv["method_details"]["variation"]


def test_neighbour_source_is_in_the_display_block():
    scorer = attacks.get_scorer("neighborhood")
    inputs = ScoringInput(uids=["a", "b"], texts=TEXTS, neighbors={"a": ["n1", "n2", "n3"], "b": ["m1", "m2", "m3"]})
    _, stored = scorer.neighbours(inputs)
    shown = _describe("neighborhood", stored, scorer.params())["method_details"]["neighbour source"]
    assert shown.startswith("the split's stored neighbours") and "all stored neighbours, 3 per text" in shown
    swap = attacks.get_scorer("neighborhood", generator="word-swap", n_neighbors=2)
    _, details = swap.neighbours(ScoringInput(uids=["a", "b"], texts=TEXTS, pool=POOL))
    shown = _describe("neighborhood(generator=word-swap,n_neighbors=2)", details, swap.params())
    assert "a substitute asked for by name" in shown["method_details"]["neighbour source"]
    bert = {"neighbour_source": "bert:bert-base-uncased", "n_neighbors": [25], "generator": "MIMIR's one-token swap"}
    assert "BERT one-token swap with bert-base-uncased" in _describe("neighborhood", bert)["method_details"][
        "neighbour source"]


def test_frequency_corpus_gradient_norm_and_recall_prefix_are_in_the_display_block():
    table = {"frequency": {"source": "table", "corpus": {"name": "c4-en-15", "n_tokens": 6_000_000, "n_texts": 9000,
                                                         "files": ["a.json.gz"]},
                           "size_rule": {"tokens_per_entry": 119.4, "met": True}, "forced": False,
                           "tokenizer_of": "pythia-160m"},
             "first_token": "EOS (<|endoftext|>) prepended, as MIMIR does: one extra forward pass"}
    details = _describe("dc_pdd", table)["method_details"]
    assert details["frequency corpus"].startswith("c4-en-15: 6,000,000 tokens of 9,000 texts")
    assert details["first token"].startswith("EOS")
    pool = _describe("dc_pdd(frequency=pool)", {"frequency": {"source": "pool", "n_texts": 98, "n_tokens": 26495,
                                                              "size_rule": {"tokens_per_entry": 0.5}},
                                                "first_token": "x"})
    assert "the run's declared pool, asked for by name" in pool["method_details"]["frequency corpus"]
    assert "MIMIR's" in _describe("gradnorm", {"reduction": "mean-tensor-linf"})["method_details"]["gradient norm"]
    assert "not MIMIR's" in _describe("gradnorm", None)["method_details"]["gradient norm"]  # earlier records: global L2
    assert "1 non-member text of" in _describe("recall", {"prefix_chars": 1200}, {"shots": 1})["method_details"]["prefix"]


def test_an_unconverged_fit_is_flagged_also_on_a_record_made_before_the_convergence_block():
    flat = [0.737886, 0.733824, 0.734237, 0.734337, 0.734036, 0.733891, 0.732491, 0.734041, 0.731716, 0.733831]
    fit = {"subset": "cal80", "n_calibration": 312, "budget": {},
           "usage": {"training_steps": 100, "forward_tokens": 1, "backward_tokens": 1, "wall_seconds": 1.0}}
    old = _describe("mia_tuner(epochs=10)", {"objective_by_epoch": flat, "steps": 100, "train_texts_per_class": 80},
                    {"epochs": 10}, fit=fit)
    (flag,) = old["flags"]  # the published 0.943 MIA-Tuner: LOSS in disguise
    assert flag["tag"] == "not converged" and "0.737886 -> 0.733831 over 10 epochs" in flag["why"]
    assert old["method_details"]["training"].startswith("10 epochs (the authors': 50)")
    learned = [1.0, 0.8, 0.6, 0.5, 0.45, 0.44, 0.44, 0.44]
    good = _describe("mia_tuner", {"objective_by_epoch": learned},
                     fit={**fit, "convergence": convergence_block(learned)})
    assert good["flags"] == []
    assert _describe("loss", None)["method_details"] == {} and _describe("loss", None)["flags"] == []
