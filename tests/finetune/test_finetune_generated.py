"""Fine-tuning on generated data (Akkus et al.) and the planted-PII leakage measures.

A tiny base is pretrained (the demo trainer) on pydoc passages with planted PII, and a second,
wider model (the generator) on the same passages; the generator writes instruction/response
pairs from docstring prompts, the base is fine-tuned on them, and the two models are compared
on the base's own pretraining split (AUCs, prefix reconstruction, template extraction). Tiny
shapes, a few epochs.
"""

from __future__ import annotations

import pytest
import yaml
from finetune_helpers import module_home

from benchmark.results.gate import publish, validate_dir
from benchmark import finetune, results, suite, targets
from benchmark.finetune import pii, pools
from benchmark.evaluate import finetune_and_compare

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
        "max_position_embeddings": 256}


home = module_home("ft-gen-home")


@pytest.fixture(scope="module")
def generated(home):
    prompts = home / "prompts.parquet"
    pools.stdlib_docstrings().head(200).to_parquet(prompts, index=False)
    entries = [
        {"id": "tiny-base", "kind": "pretrain", "pool": {"builtin": "pydoc", "seed": 3}, "arch": TINY,
         "sizes": {"members": 60, "nonmembers": 60, "reference_pool": 30}, "pii": {"fraction": 0.5, "seed": 1},
         "train": {"epochs": 4, "batch_size": 16, "lr": 0.003}},
        {"id": "tiny-generator", "extends": "tiny-base", "arch": {"hidden_size": 96, "num_attention_heads": 4}},
        {"id": "tiny-gen", "kind": "generated", "base": "ft/tiny-base", "pool": {"file": str(prompts)},
         "sizes": {"members": 16, "nonmembers": 16},
         "generate": {"style": "self_instruct", "prompt_tokens": 4, "instruction_tokens": 6, "max_new_tokens": 12,
                      "generator": "ft/tiny-generator"},
         "train": {"epochs": 2, "lr": 1e-3, "batch_size": 8, "block_size": 64}},
    ]
    file = home / "recipes.yaml"
    file.write_text(yaml.safe_dump({"recipes": entries}, sort_keys=False))
    out = finetune_and_compare("tiny-gen", recipes_file=file, results_dir=home / "results", progress=False)
    return out, home / "results"


def test_generated_recipe_reports_both_aucs_their_difference_and_pii(generated):
    out, res = generated
    report = out["report"]
    assert report["split"] == "finetune/tiny-base" and report["base"] == "ft/tiny-base"
    assert not report["allowed_invalid"]  # the registered base split now lists the fine-tuned target
    assert suite.get_split("finetune/tiny-base").labels_valid_for("ft/tiny-gen")
    names = {r["scorer"] for r in report["scorers"]}
    assert {"loss", "zlib", "min_k", "min_k_plus_plus"} <= names
    for row in report["scorers"]:
        assert 0 <= row["base_auc"] <= 1 and 0 <= row["finetuned_auc"] <= 1
        assert row["difference"] == pytest.approx(row["finetuned_auc"] - row["base_auc"])
        assert row["ci95"][0] <= row["difference"] <= row["ci95"][1]
    for model in ("base", "finetuned"):
        assert report["pii_extraction"][model] == report["prefix_reconstruction"][model]  # the former name
        assert report["prefix_reconstruction"][model]["measure"] == "prefix reconstruction"
        template = report["template_extraction"][model]
        assert template["measure"] == "template extraction" and "huang-a" in template["by_template"]
        for side in ("members", "nonmembers"):
            block = report["prefix_reconstruction"][model][side]
            assert block["n_items"] > 0 and 0 <= block["rate"] <= 1
            # template extraction targets the contacts (e-mail, phone), one per planted person
            assert 0 < template[side]["n_items"] == block["n_items"] - block["by_kind"]["name"]["n_items"]
    scan = validate_dir(res)
    assert scan.ok, [str(r) for r in scan.rejected]
    by_target = {}
    for _, record in scan.records:
        by_target.setdefault(record["target"]["id"], []).append(record)
    assert len(by_target["ft/tiny-gen"]) == len(by_target["ft/tiny-base"]) == len(names)
    for record in by_target["ft/tiny-gen"]:
        block = record["generated_data"]
        assert block["recipe"] == "tiny-gen" and block["finetuned"]["auc"] == record["metrics"]["auc"]
        assert block["pii_extraction"]["finetuned"]["members"]["n_items"] > 0
        assert block["template_extraction"]["finetuned"]["members"]["n_items"] > 0
        assert record["provenance"]["recipe"]["id"] == "tiny-gen"
        assert record["provenance"]["recipe"]["kind"] == "generated"
    # what the fine-tuning learned: the base's own instruction/response pairs
    manifest = finetune.read_manifest("ft/tiny-gen")
    assert manifest["generated"]["style"] == "self_instruct" and manifest["counts"]["trained"] == 16
    # the texts were written by the generator, a model other than the base
    generator = manifest["generated"]["generator"]
    assert generator["id"] == "ft/tiny-generator"
    assert generator["weights_sha256"] != targets.get_target("ft/tiny-base").extra["weights_sha256"]
    texts = suite.ensure("finetune/tiny-gen").samples["text"]
    assert texts.str.startswith("### Instruction:\n").all()
    assert targets.get_target("ft/tiny-gen").extra["base"]["id"] == "ft/tiny-base"


def test_the_pretrained_base_tokenizer_learns_from_the_reference_pool(generated):
    import json
    from pathlib import Path

    info = json.loads((Path(targets.get_target("ft/tiny-base").local_path) / "training.json").read_text())
    assert info["tokenizer_trained_on"].startswith("the recipe's reference pool")
    assert info["tokenizer_n_texts"] == 30  # sizes.reference_pool: neither member nor non-member


def test_base_split_records_its_planted_pii(generated):
    from benchmark.evaluate import pii_items

    split = suite.ensure("finetune/tiny-base")
    items = pii_items(split)
    labels = split.labels()
    assert {it["member"] for it in items} == {0, 1}
    carriers = {it["text"] for it in items}
    assert len(carriers) == round(0.5 * len(labels))
    for it in items:
        assert it["text"][it["start"] : it["start"] + len(it["value"])] == it["value"]


def test_planted_pii_memorizer_is_caught(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from benchmark.targets import demo

    texts = [" ".join(t.split()[:24]) for t in pools.stdlib_docstrings()["text"].head(8)]
    planted, items = pii.plant(texts, fraction=1.0, seed=4)
    for it in items:
        it.update(text=planted[it["index"]], member=1)

    def rates(train_on, name):
        folder = demo.train(train_on, tmp_path / name, arch={"model_type": "gpt_neox", **TINY}, epochs=150,
                            batch_size=8, lr=3e-3, progress=False)
        model, tok = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        return (pii.reconstruction_rates(model, tok, items, max_length=256)["members"],
                pii.template_rates(model, tok, items)["members"])

    memorizer, memorizer_templates = rates(planted, "memorizer")
    assert memorizer["n_items"] == 16 and memorizer["rate"] >= 0.75, memorizer
    assert memorizer_templates["n_items"] == 8  # one contact per planted person
    # the same texts without the planted people: nothing to reconstruct, nothing to extract
    control, control_templates = rates(texts, "control")
    assert control["rate"] <= 0.1, control
    assert control_templates["n_extracted"] == 0


def test_template_extraction_reads_the_first_contact_off_the_output():
    assert pii.predicted_contact(" is ada.brandt12@example.com. Or bob@example.org", "email") == \
        "ada.brandt12@example.com"
    assert pii.predicted_contact(" call (415) 555-0142 today", "phone") == "(415) 555-0142"
    assert pii.predicted_contact(" no address here", "email") is None
    corpus = pii.corpus_templates()
    assert corpus["email"]["corpus-0"] == "Contact {name} at" and corpus["phone"]["corpus-3"] == "Call {name} on"
    assert pii.templates_for("email")["huang-d"] == "-----Original Message-----\nFrom: {name} [mailto:"
    text = "Intro. Contact Ada Brandt at ada.brandt12@example.com for details. More."
    items = [{"text": text, "kind": "name", "value": "Ada Brandt", "start": 15, "member": 1},
             {"text": text, "kind": "email", "value": "ada.brandt12@example.com", "start": 29, "member": 1}]
    assert pii.contact_items(items) == [{**items[1], "name": "Ada Brandt"}]


def test_site_shows_the_track_the_recipe_and_the_comparison(generated, tmp_path):
    from benchmark.site import build_site

    out, res = generated
    publish(res)  # the publication gate, which the site reads
    report = build_site(res, tmp_path / "site")
    assert not report.rejected
    page = (tmp_path / "site" / "finetune.html").read_text()
    assert "recipe tiny-gen (self-instruct)" in page and "<svg" in page and "PII extraction rate" in page
    for row in out["report"]["scorers"]:
        assert f"{row['difference']:+.3f}" in page
    assert "pretrain recipes" in page  # the base's own split, a table per recipe family
    target = (tmp_path / "site" / "target" / "ft-tiny-gen.html").read_text()
    assert "Recipe" in target and "tiny-gen" in target and "LoRA r 64" in target
    assert 'href="finetune.html"' in (tmp_path / "site" / "index.html").read_text()
