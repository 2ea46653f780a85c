"""The fine-tuned track: recipes, assignment, the trainer and its defences, registration.

Tiny models built from configs (GPT-NeoX and OPT, a tokenizer trained on the test text), real
text from the standard library's docstrings, a few dozen steps each. Everything is written
under a MEMBENCH_HOME of the module's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from finetune_helpers import docs, make_base, module_home, pool_file, recipe, write_recipes  # noqa: F401  (fixtures)

from benchmark import finetune, suite, targets
from benchmark.evaluate import RunSpec, check_validity, run
from benchmark.errors import MembenchError
from benchmark.finetune import pools
from benchmark.finetune.trainer import TrainingData


home = module_home("ft-home")


@pytest.fixture(scope="module")
def bases(home, docs):
    # the tokenizer sees the whole pool (it is the base's), the weights are random
    texts = docs["text"].tolist()
    return {kind: make_base(home / "bases" / kind, kind, texts) for kind in ("gpt_neox", "opt")}


_BATCHES = TrainingData.batches


class Yielded:
    """Records what the trainer's data loader yields (monkeypatched over TrainingData.batches)."""

    def __init__(self, monkeypatch):
        self.uids: list[str] = []
        original = _BATCHES

        def batches(loader, start=0):
            for step, uids, ids in original(loader, start):
                self.uids.extend(uids)
                yield step, uids, ids

        monkeypatch.setattr(TrainingData, "batches", batches)


@pytest.fixture(scope="module")
def built(home, bases, pool_file):
    """LoRA and full fine-tuning of a tiny GPT-NeoX and a tiny OPT, with what each loader yielded."""
    entries = []
    for kind, base in bases.items():
        short = "neox" if kind == "gpt_neox" else "opt"
        entries.append(recipe(f"{short}-full", base, pool_file, method={"kind": "full"}))
        # the attention and MLP projections: a random-weight base needs the capacity to memorize
        modules = (["query_key_value", "dense_h_to_4h", "dense_4h_to_h"] if kind == "gpt_neox"
                   else ["q_proj", "v_proj", "fc1", "fc2"])
        entries.append(recipe(f"{short}-lora", base, pool_file, method={"kind": "lora", "target_modules": modules},
                              train={"epochs": 10, "lr": 1e-2, "batch_size": 8, "block_size": 64}))
    file = write_recipes(home / "recipes.yaml", entries)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        for entry in entries:
            seen = Yielded(mp)
            summary = finetune.finetune(entry["id"], recipes_file=file, progress=False)
            out[entry["id"]] = (summary, seen.uids)
    return file, out


@pytest.mark.parametrize("rid", ["neox-full", "neox-lora", "opt-full", "opt-lora"])
def test_fine_tuned_target_is_attackable_and_manifest_is_what_was_trained(built, home, rid):
    file, out = built
    summary, yielded = out[rid]
    assert summary["target"] == f"ft/{rid}" and summary["split"] == f"finetune/{rid}"
    manifest = finetune.read_manifest(f"ft/{rid}")
    # exactly what the data loader yielded, every trained sample once per epoch
    assert manifest["trained_uids"] == sorted(set(yielded))
    counts = pd.Series(yielded).value_counts()
    assert set(counts) == {10}
    split = suite.ensure(f"finetune/{rid}")
    labels = split.labels()
    assert sorted(labels[labels == 1].index) == manifest["trained_uids"]
    assert sorted(labels[labels == 0].index) == manifest["nonmember_uids"]
    assert not set(manifest["nonmember_uids"]) & set(yielded)
    # the target is a target like any other; its split's labels are valid for it alone
    records = run(RunSpec.build(f"ft/{rid}", f"finetune/{rid}", ["loss"], results_dir=home / "results",
                                progress=False)).records
    assert records[0]["metrics"]["auc"] > 0.75, records[0]["metrics"]["auc"]
    assert records[0]["provenance"]["recipe"]["id"] == rid
    assert records[0]["provenance"]["recipe"]["method"]["kind"] == rid.split("-")[1]
    with pytest.raises(MembenchError, match="not membership ground truth"):
        check_validity(suite.get_split(f"finetune/{rid}"), "ft/other", False)
    spec = targets.get_target(f"ft/{rid}")
    assert spec.extra["weights_sha256"] == targets.load_target(f"ft/{rid}").weights_hash
    assert spec.extra["training"]["steps"] == 60 and spec.extra["training"]["tokens"] > 0
    assert spec.extra["recipe"]["sha256"] == finetune.get_recipe(rid, file).sha256


def test_lora_defaults_follow_spv_mia_and_records_are_reused(built, home):
    file, _ = built
    r = finetune.get_recipe("neox-lora", file)
    defaults = finetune.recipe.normalize({"id": "x", "base": "b", "pool": {"builtin": "pydoc"}})
    assert defaults.method == {"kind": "lora", "r": 64, "alpha": 16.0, "dropout": 0.1, "target_modules": None}
    assert defaults.train["lr"] == 1e-4
    assert r.method["r"] == 64
    again = finetune.finetune("neox-lora", recipes_file=file, progress=False)
    assert again["reused"] and again["weights_sha256"] == built[1]["neox-lora"][0]["weights_sha256"]
    # --replace trains again, and the seeded run lands on the same weights
    replaced = finetune.finetune("neox-lora", recipes_file=file, progress=False, replace=True)
    assert not replaced["reused"] and replaced["weights_sha256"] == again["weights_sha256"]
    # a reference "with the target's recipe" on other texts is one call
    other = suite.ensure("finetune/neox-lora")
    pool = pd.read_parquet(other.path / "pool.parquet")["text"].tolist()
    ref = finetune.finetune_like("ft/neox-lora", pool, "neox-lora-ref", progress=False)
    spec = targets.get_target(ref["target"])
    assert spec.extra["recipe_full"]["method"] == r.method and spec.extra["recipe_full"]["train"] == r.train
    assert ref["split"] is None
    assert spec.extra["base"]["weights_sha256"] == targets.get_target("ft/neox-lora").extra["base"]["weights_sha256"]
    assert finetune.read_manifest(ref["target"])["counts"]["trained"] == len(set(pool))


def test_per_user_sides_attacker_held_and_cap(home, bases, pool_file, monkeypatch):
    entry = recipe("users", bases["gpt_neox"], pool_file, assign="user", method={"kind": "full"},
                   sizes={"members": 10, "nonmembers": 10, "attacker_per_user": 2, "min_user_samples": 5},
                   defences={"per_user_cap": 3}, train={"epochs": 1, "batch_size": 8, "block_size": 32})
    file = write_recipes(home / "users.yaml", [entry])
    seen = Yielded(monkeypatch)
    finetune.finetune("users", recipes_file=file, progress=False)
    manifest = finetune.read_manifest("ft/users")
    split = suite.ensure("finetune/users")
    samples = split.samples.set_index("uid")
    labels = split.labels()
    # every user on one side
    sides = labels.groupby(samples["group"]).nunique()
    assert (sides == 1).all() and len(sides) == 20
    # attacker-held samples: kept apart, never trained on (manifest and loader agree)
    attacker = pd.read_parquet(split.path / "attacker.parquet")
    assert set(attacker["uid"]) == set(manifest["attacker_uids"]) and len(attacker) == 40
    assert not set(attacker["uid"]) & set(seen.uids) and not set(attacker["uid"]) & set(manifest["trained_uids"])
    assert not set(attacker["uid"]) & set(samples.index)
    assert (attacker.groupby("group").size() == 2).all()
    group_labels = pd.read_parquet(split.path / "group_labels.parquet").set_index("group")["label"]
    assert group_labels.to_dict() == labels.groupby(samples["group"]).first().to_dict()
    # the cap: at most 3 trained texts per user; the rest recorded and used nowhere
    trained = samples.loc[manifest["trained_uids"]]
    assert trained.groupby("group").size().max() == 3
    assert manifest["capped_out_uids"] and not set(manifest["capped_out_uids"]) & set(samples.index)
    assert sorted(set(seen.uids)) == manifest["trained_uids"]
    assert split.manifest["n_groups"] == 20 and "group" in split.manifest["fields"]


def test_per_example_clipping_differs_from_batch_clipping(bases):
    import torch
    from transformers import AutoModelForCausalLM

    from benchmark.finetune.trainer import accumulate_gradients

    model = AutoModelForCausalLM.from_pretrained(bases["gpt_neox"]).eval()  # no dropout
    params = [p for p in model.parameters()]
    batch = [[5, 9, 14, 3, 7, 2, 11, 30], [8, 8, 8, 8], [40, 41, 42, 43, 44, 45]]

    def grads(clip):
        accumulate_gradients(model, params, batch, pad_id=0, clip=clip)
        return torch.cat([p.grad.flatten() for p in params]).clone()

    def alone(toks, max_norm):
        accumulate_gradients(model, params, [toks], pad_id=0, clip=None)
        g = torch.cat([p.grad.flatten() for p in params]).clone()
        return g * min(1.0, max_norm / (g.norm().item() + 1e-6))

    plain = grads(None)
    # a bound no gradient reaches: both modes are the plain gradient of the mean loss
    assert torch.allclose(grads({"mode": "batch", "max_norm": 1e6}), plain, atol=1e-6)
    assert torch.allclose(grads({"mode": "per_example", "max_norm": 1e6}), plain, atol=1e-5)
    norms = [alone(t, 1e9).norm().item() for t in batch]
    bound = 0.5 * min(norms)
    per_example = grads({"mode": "per_example", "max_norm": bound})
    by_hand = torch.stack([alone(t, bound) for t in batch]).mean(0)
    tol = 1e-4 * by_hand.abs().max().item()  # fp32: the two sums run in different orders
    assert torch.allclose(per_example, by_hand, rtol=1e-4, atol=tol)
    batch_clip = grads({"mode": "batch", "max_norm": bound})
    assert abs(batch_clip.norm().item() - bound) < 1e-4 * bound
    assert torch.allclose(batch_clip, plain * bound / plain.norm(), rtol=1e-4, atol=tol)
    # different directions, not only different lengths
    cos = torch.nn.functional.cosine_similarity(per_example, batch_clip, dim=0).item()
    assert cos < 0.999


def test_early_stopping_stops(home, bases, pool_file, monkeypatch):
    entry = recipe("stops", bases["gpt_neox"], pool_file, method={"kind": "full"},
                   sizes={"members": 32, "nonmembers": 32, "validation": 8},
                   train={"epochs": 5, "batch_size": 8, "block_size": 32},
                   defences={"early_stopping": {"patience": 1, "eval_every": 1, "min_delta": 100.0}})
    file = write_recipes(home / "stops.yaml", [entry])
    seen = Yielded(monkeypatch)
    out = finetune.finetune("stops", recipes_file=file, progress=False)
    spec = targets.get_target("ft/stops")
    assert out["stopped_early"] and out["steps"] == 2 and spec.extra["training"]["planned_steps"] == 20
    assert [p[0] for p in spec.extra["training"]["eval_curve"]] == [1, 2]
    manifest = finetune.read_manifest("ft/stops")
    # only what was yielded before the stop is a member; planned members never trained are left out
    assert manifest["trained_uids"] == sorted(set(seen.uids)) and len(seen.uids) == 16
    assert len(manifest["planned_not_trained"]) == 16
    labels = suite.ensure("finetune/stops").labels()
    assert int(labels.sum()) == 16


def test_killed_finetune_resumes_to_the_same_weights(home, bases, pool_file, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    entry = recipe("resume", bases["gpt_neox"], pool_file, method={"kind": "lora"},
                   sizes={"members": 32, "nonmembers": 8, "reference_pool": 0},
                   train={"epochs": 4, "lr": 1e-3, "batch_size": 4, "block_size": 32, "checkpoint_every": 4})
    file = write_recipes(tmp_path / "resume.yaml", [entry])
    env = {**os.environ, "MEMBENCH_HOME": str(tmp_path / "killed")}
    cmd = [sys.executable, "-m", "benchmark.cli", "finetune", "resume", "--recipes", str(file), "--json"]
    checkpoint = tmp_path / "killed" / "targets" / "ft" / "resume.partial" / "checkpoint.pt"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert checkpoint.exists() and not (tmp_path / "killed" / "registry" / "targets" / "ft__resume.yaml").exists()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads(again.stdout)
    # the same recipe, never interrupted (a fresh process as well, another MEMBENCH_HOME)
    straight = subprocess.run(cmd, env={**env, "MEMBENCH_HOME": str(tmp_path / "straight")}, capture_output=True,
                              text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert resumed["weights_sha256"] == json.loads(straight.stdout)["weights_sha256"]
    manifest = json.loads((tmp_path / "killed" / "targets" / "ft" / "resume" / "manifest.json").read_text())
    assert manifest["training"]["resumed_from"] >= 4 and manifest["training"]["steps"] == 32


def _tree(root: Path) -> list[str]:
    """Every file under ``root`` (lock files aside); folders made empty by a lookup are no writes."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "locks" not in p.parts)


BAD = {
    "unknown field": ({"colour": "red"}, "unknown field 'colour'"),
    "no text column": ({"pool": {"file": "NOTEXT"}}, "has no `text` column"),
    "no user column": ({"assign": "user", "pool": {"file": "POOL", "text": "text"}}, "names no user column"),
    "user column absent": ({"assign": "user", "pool": {"file": "POOL", "user": "author"}}, "no user column `author`"),
    "missing base": ({"base": "/nowhere/model"}, "base '/nowhere/model' is neither"),
    "existing target": ({"id": "taken"}, "ft/taken is already registered"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, home, bases, pool_file, tmp_path, capsys):
    from benchmark.cli import main

    over, message = BAD[case]
    notext = tmp_path / "notext.parquet"
    pd.DataFrame({"body": ["a b c"] * 4}).to_parquet(notext)
    entry = recipe("bad", bases["gpt_neox"], pool_file)
    entry.update(json.loads(json.dumps(over).replace("NOTEXT", str(notext)).replace("POOL", str(pool_file))))
    file = write_recipes(tmp_path / "bad.yaml", [entry])
    if case == "existing target":
        targets.register_target({"id": "ft/taken", "path": str(bases["gpt_neox"]), "family": "local"}, replace=True)
    before = _tree(home)
    code = main(["finetune", entry["id"], "--recipes", str(file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert _tree(home) == before


def test_recipe_registry_is_strict_and_extends():
    table = finetune.recipes()
    assert {"pydoc-pii-base", "stdlib-docs-lora", "stdlib-users-full", "pii-gen-continuation",
            "pii-gen-selfinstruct"} <= set(table)
    child, parent = table["pii-gen-selfinstruct"], table["pii-gen-continuation"]
    assert child.generate["style"] == "self_instruct" and child.train == parent.train and child.sha256 != parent.sha256
    assert table["stdlib-users-full"].per_user and table["stdlib-users-full"].split_id == "finetune/stdlib-users-full"
    with pytest.raises(MembenchError, match="unknown field 'rank'"):
        finetune.recipe.normalize({"id": "x", "base": "b", "pool": {"builtin": "pydoc"}, "method": {"rank": 8}})
    with pytest.raises(MembenchError, match="early stopping needs a held-out set"):
        finetune.recipe.normalize({"id": "x", "base": "b", "pool": {"builtin": "pydoc"},
                                   "defences": {"early_stopping": {}}})
    with pytest.raises(MembenchError, match="per_user_cap needs assign: user"):
        finetune.recipe.normalize({"id": "x", "base": "b", "pool": {"builtin": "pydoc"}, "defences": {"per_user_cap": 2}})
    variant = finetune.derive(table["stdlib-users-full"], "capped", defences={"per_user_cap": 2})
    assert variant.defences["per_user_cap"] == 2 and variant.sizes == table["stdlib-users-full"].sizes


def test_builtin_pool_is_disjoint_from_pydoc_and_grouped_by_module(docs):
    from benchmark.suite import demo

    table = pools.stdlib_docstrings()
    assert table["text"].is_unique and table["user"].nunique() > 100
    words = table["text"].str.split().str.len()
    assert words.min() >= pools.MIN_WORDS and words.max() <= pools.MAX_WORDS
    topics = {g for p in demo.passages(20240501) for g in pools._word_grams(p)}
    assert not any(pools._word_grams(t) & topics for t in table["text"])
    assert "logging.handlers" in set(table["user"])


# -- defences: DP-SGD, SGD, what clipping did, step-matched cap, utility ---------------------------

def _tiny_model(bases):
    from transformers import AutoModelForCausalLM

    from benchmark.finetune import trainer

    model = AutoModelForCausalLM.from_pretrained(bases["gpt_neox"])  # dropout 0 in this config
    model, named, _ = trainer.prepare_model(model, {"kind": "full"})
    model.train()  # Opacus records per-example gradients in training mode only
    return model, list(named.values())


BATCH = [[5, 9, 14, 3, 7, 2, 11, 30], [8, 8, 8, 8], [40, 41, 42, 43, 44, 45]]


def test_dp_step_is_the_clipped_sum_plus_calibrated_noise_over_the_expected_batch(bases):
    import torch

    from benchmark.finetune import trainer

    model, params = _tiny_model(bases)
    # by hand: each example's gradient clipped on its own (the per-example clipping path), summed
    _, hand_norms = trainer.accumulate_gradients(model, params, BATCH, pad_id=0, clip={"mode": "per_example",
                                                                                       "max_norm": 1e9})
    bound = 0.5 * min(hand_norms)
    trainer.accumulate_gradients(model, params, BATCH, pad_id=0, clip={"mode": "per_example", "max_norm": bound})
    clipped_sum = torch.cat([p.grad.flatten() for p in params]) * len(BATCH)
    for p in params:
        p.grad = None
    dp_cfg = {"epsilon": 8.0, "delta": 1e-5, "max_grad_norm": bound, "accountant": "rdp"}
    dp = trainer.DPSGD(model, torch.optim.SGD(params, lr=0.0), dp_cfg, sample_rate=0.05, planned_steps=40,
                       expected_batch=4)
    assert dp.noise_multiplier > 0.3
    dp.optimizer.noise_multiplier = 0.0  # noise off: Opacus's update is the clipped sum over the expected batch
    _, norms = dp.step(BATCH, pad_id=0, device="cpu")
    assert np.allclose(norms, hand_norms, rtol=1e-4)
    got = torch.cat([p.grad.flatten() for p in dp.params])
    tol = 1e-4 * clipped_sum.abs().max().item()
    assert torch.allclose(got, clipped_sum / 4, rtol=1e-4, atol=tol)
    # noise on: what is added is Gaussian with std noise_multiplier * max_grad_norm / expected batch
    dp.optimizer.noise_multiplier = 2.0
    dp.step(BATCH, pad_id=0, device="cpu")
    noise = torch.cat([p.grad.flatten() for p in dp.params]) - clipped_sum / 4
    assert abs(noise.std().item() / (2.0 * bound / 4) - 1) < 0.05, noise.std().item()
    # the accountant: the planned steps spend the stated epsilon (to Opacus's 0.01 tolerance)
    assert 7.9 <= dp.epsilon(40) <= 8.0 and dp.epsilon(20) < dp.epsilon(40) and dp.epsilon(0) == 0.0
    # an empty Poisson batch is a noise-only step
    loss, empty_norms = dp.step([], pad_id=0, device="cpu")
    assert empty_norms == [] and np.isnan(loss)


def test_poisson_batches_are_seeded_and_train_what_they_drew():
    data = TrainingData([f"u{i}" for i in range(40)], [[1, 2]] * 40, batch_size=4, epochs=3, seed=5, poisson=True)
    again = TrainingData([f"u{i}" for i in range(40)], [[1, 2]] * 40, batch_size=4, epochs=3, seed=5, poisson=True)
    assert data.total_steps == 30 and data.sample_rate == pytest.approx(0.1)
    sizes = [len(data.indices(s)) for s in range(data.total_steps)]
    assert [again.indices(s) for s in range(30)] == [data.indices(s) for s in range(30)]
    assert len(set(sizes)) > 1  # the batch size varies: independent draws, not a shuffled epoch
    drawn = {f"u{i}" for s in range(30) for i in data.indices(s)}
    assert set(data.uids_through(30)) == drawn
    fixed = TrainingData([f"u{i}" for i in range(40)], [[1, 2]] * 40, batch_size=4, epochs=3, seed=5, steps=7)
    assert fixed.total_steps == 7 and fixed.epochs == 1


@pytest.fixture(scope="module")
def defended(home, bases, pool_file):
    """A per-user recipe (full fine-tuning) and its defence variants, built once."""
    users = {"assign": "user", "method": {"kind": "full"},
             "sizes": {"members": 6, "nonmembers": 6, "attacker_per_user": 1, "min_user_samples": 5,
                       "reference_pool": 0},
             "train": {"epochs": 2, "lr": 3e-3, "batch_size": 4, "block_size": 24}}
    entries = [
        recipe("u-none", bases["gpt_neox"], pool_file, **users),
        {"id": "u-cap-steps", "extends": "u-none", "defences": {"per_user_cap": 2}, "train": {"steps": "uncapped"}},
        {"id": "u-clip-sgd", "extends": "u-none", "train": {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05},
         "defences": {"clip": {"mode": "per_example", "max_norm": 0.5}}},
        {"id": "u-dp", "extends": "u-none", "defences": {"dp": {"epsilon": 4, "max_grad_norm": 0.5}}},
    ]
    file = write_recipes(home / "defences.yaml", entries)
    seen = {}
    with pytest.MonkeyPatch.context() as mp:
        for entry in entries:
            loader = Yielded(mp)
            finetune.finetune(entry["id"], recipes_file=file, progress=False)
            seen[entry["id"]] = loader.uids
    return file, seen


def test_step_matched_cap_trains_as_many_steps_as_the_uncapped_recipe(defended):
    file, _ = defended
    uncapped, matched = finetune.read_manifest("ft/u-none"), finetune.read_manifest("ft/u-cap-steps")
    assert matched["training"]["steps"] == uncapped["training"]["steps"]
    # ... on the capped texts (at most 2 per member user), so in more epochs than the uncapped recipe
    samples = suite.ensure("finetune/u-cap-steps").samples.set_index("uid")
    assert samples.loc[matched["trained_uids"]].groupby("group").size().max() == 2
    assert len(matched["trained_uids"]) < len(uncapped["trained_uids"])
    assert matched["training"]["epochs"] > uncapped["training"]["epochs"]
    capped = finetune.get_recipe("u-cap-steps", file)
    plain = finetune.derive(capped, "u-cap", train={"steps": None})  # the cap alone: fewer steps
    assert matched["defence"]["steps_rule"] == "uncapped" and uncapped["defence"]["steps_rule"] is None
    n_capped = len(matched["trained_uids"])
    assert plain.train["epochs"] * -(-n_capped // plain.train["batch_size"]) < matched["training"]["steps"]


def test_clipping_and_dp_record_what_they_did_and_every_target_its_utility(defended, home):
    _, seen = defended
    clip = finetune.read_manifest("ft/u-clip-sgd")["defence"]
    assert clip["optimizer"] == "sgd" and clip["clipping"]["mode"] == "per_example"
    record = clip["clipping"]
    assert record["examples_seen"] == len(seen["u-clip-sgd"]) and 0 <= record["fraction_clipped"] <= 1
    assert record["examples_clipped"] == round(record["fraction_clipped"] * record["examples_seen"])
    dp = finetune.read_manifest("ft/u-dp")
    block = dp["defence"]["dp"]
    assert block["epsilon"] == 4.0 and block["delta"] == 1e-5 and block["sampling"] == "poisson"
    assert block["noise_multiplier"] > 0 and block["epsilon_spent"] <= 4.0 + 0.05
    assert dp["defence"]["clipping"]["examples_seen"] == len(seen["u-dp"])
    assert dp["trained_uids"] == sorted(set(seen["u-dp"]))  # Poisson draws: what was drawn is what is a member
    users = block["user_level"]
    assert users["max_trained_texts_per_user"] >= 1 and users["epsilon"] == pytest.approx(
        users["max_trained_texts_per_user"] * block["epsilon_spent"], rel=1e-3)
    for rid in ("u-none", "u-cap-steps", "u-clip-sgd", "u-dp"):
        manifest = finetune.read_manifest(f"ft/{rid}")
        utility = manifest["utility"]
        assert utility["heldout_texts"] == len(manifest["nonmember_uids"]) > 0
        assert utility["heldout_loss"] > 0 and utility["base_heldout_loss"] > 0 and utility["train_loss"] > 0
        split = suite.ensure(f"finetune/{rid}")
        assert split.manifest["utility"] == utility
    # a fine-tuned model learns its members: lower loss on them than on held-out texts
    none = finetune.read_manifest("ft/u-none")["utility"]
    assert none["train_loss"] < none["heldout_loss"]
    # records carry it: provenance.recipe.built
    rec = run(RunSpec.build("ft/u-dp", "finetune/u-dp", ["loss"], results_dir=home / "results-dp", progress=False)).records[0]
    built = rec["provenance"]["recipe"]["built"]
    assert built["utility"]["heldout_loss"] == finetune.read_manifest("ft/u-dp")["utility"]["heldout_loss"]
    assert built["defence"]["dp"]["epsilon_spent"] == block["epsilon_spent"]


def test_defence_knobs_are_checked():
    base = {"id": "x", "base": "b", "pool": {"builtin": "pydoc"}}
    with pytest.raises(MembenchError, match="defences.dp needs an epsilon"):
        finetune.recipe.normalize({**base, "defences": {"dp": {}}})
    with pytest.raises(MembenchError, match="clips every example itself"):
        finetune.recipe.normalize({**base, "defences": {"dp": {"epsilon": 1}, "clip": {"mode": "batch"}}})
    with pytest.raises(MembenchError, match="train.optimizer is 'adam'"):
        finetune.recipe.normalize({**base, "train": {"optimizer": "adam"}})
    with pytest.raises(MembenchError, match="momentum applies to optimizer sgd only"):
        finetune.recipe.normalize({**base, "train": {"momentum": 0.9}})
    with pytest.raises(MembenchError, match="has no per_user_cap"):
        finetune.recipe.normalize({**base, "train": {"steps": "uncapped"}})
    with pytest.raises(MembenchError, match="unknown field 'sigma'"):
        finetune.recipe.normalize({**base, "defences": {"dp": {"epsilon": 1, "sigma": 1}}})
    ok = finetune.recipe.normalize({**base, "defences": {"dp": {"epsilon": 2}}})
    assert ok.defences["dp"] == {"epsilon": 2.0, "delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"}
    assert ok.train["optimizer"] == "adamw" and ok.train["momentum"] is None and ok.train["steps"] is None
    table = finetune.recipes()
    assert table["stdlib-users-full-cap-steps"].train["steps"] == "uncapped"
    assert table["stdlib-users-full-dp8"].defences["dp"]["epsilon"] == 8.0
    # a pretrain recipe's normalized form (and hash) has no new fields
    assert "dp" not in table["pydoc-pii-base"].defences and "optimizer" not in table["pydoc-pii-base"].train
