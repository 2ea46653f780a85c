"""Building a recipe: check, assign, (generate), train, save, register target and split.

Everything that can be refused is checked before anything is written (recipe fields, the
pool's columns, the base, a target id already taken). The target is trained in
``<target folder>.partial`` (checkpoints there; a run started again resumes), moved into place
when done, and registered (``targets.register_target``) with its split
(``suite.register_split`` + ``suite.store.materialize``). A recipe whose target is registered
with the same inputs (recipe hash, pool hash, base weights) is reused, not trained again.

The target folder holds a plain transformers model (for LoRA also ``adapter/``), its tokenizer,
``training.json`` (the full curves) and ``manifest.json``: the recipe, the base, the pool, the
assignment and exactly which samples were trained on (``trained_uids``: what the data loader
yielded), plus the held-out, attacker-held, validation and capped-out uids, and what the
defences did and cost:

- ``utility``: the held-out loss (the training objective, ``trainer.mean_loss``, on the split's
  non-member texts, which no step saw), the same on the trained texts, and the base's held-out
  loss on the same texts before fine-tuning (what the fine-tuning gained);
- ``defence``: the clipping record (fraction of examples, or batches, whose gradient norm
  exceeded the bound, and the norms' quantiles), the DP-SGD record (stated and spent epsilon,
  delta, noise multiplier, sampling rate, accountant; for a per-user recipe also the
  group-privacy bound for a user's k trained texts), the optimizer and the steps rule.

Both also go into the registry entry's ``recipe.built`` (so into every record's
``provenance.recipe.built``) and into the split's manifest (``utility`` and
``defence``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd

from .. import suite, targets
from ..errors import MembenchError
from ..hashing import sha256_files, sha256_json
from ..home import announce, locked, portable, targets_dir
from ..progress import record_timing
from ..suite.store import make_uid, materialize
from . import assign as assigning
from . import pools
from .recipe import Recipe, derive, recipes

MANIFEST = "manifest.json"
CURVE_POINTS = 200  # loss-curve points kept in the registry entry (the full curve is in training.json)


def weights_hash(path: Path) -> str:
    """SHA-256 over the model folder's weight files, as ``targets.load_target`` reports it."""
    files = [f for pat in ("*.safetensors", "*.bin") for f in Path(path).glob(pat)]
    return sha256_files(files) if files else "unknown"


def _thin(curve: list, points: int = CURVE_POINTS) -> list:
    if len(curve) <= points:
        return [list(c) for c in curve]
    step = len(curve) / points
    picked = [curve[int(i * step)] for i in range(points)] + [curve[-1]]
    return [list(c) for c in picked]


def _base_recipe(recipe: Recipe, table: dict[str, Recipe]) -> Recipe | None:
    base = recipe.base or ""
    if base.startswith("ft/") and base[3:] in table:
        return table[base[3:]]
    return None


def _generator_recipe(recipe: Recipe, table: dict[str, Recipe]) -> Recipe | None:
    gen = (recipe.generate or {}).get("generator") if recipe.kind == "generated" else None
    if gen and gen.startswith("ft/") and gen[3:] in table:
        return table[gen[3:]]
    return None


def _generator_spec(recipe: Recipe):
    gen = recipe.generate["generator"]
    try:
        return targets.get_target(gen)
    except MembenchError:
        raise MembenchError(
            f"recipe {recipe.id}: generate.generator {gen!r} is neither a registry target nor a local model directory",
            "name a target from `membench targets list`, a folder with config.json, or ft/<id> of a recipe") from None


def _base_spec(recipe: Recipe):
    try:
        return targets.get_target(recipe.base)
    except MembenchError:
        raise MembenchError(
            f"recipe {recipe.id}: base {recipe.base!r} is neither a registry target nor a local model directory",
            "name a target from `membench targets list` or a folder with config.json",
        ) from None


def evaluation_split(recipe: Recipe, table: dict[str, Recipe]) -> str:
    """The base's own pretraining membership split a generated recipe is evaluated on."""
    split_id = recipe.generate["evaluate_on"]
    if split_id is None:
        base_recipe = _base_recipe(recipe, table)
        registered = targets.targets().get(recipe.base)
        if base_recipe is not None:
            split_id = base_recipe.split_id
        elif registered is not None and registered.extra.get("split"):
            split_id = registered.extra["split"]
        else:
            raise MembenchError(f"recipe {recipe.id}: no split says what the base {recipe.base} was trained on",
                                "set generate.evaluate_on to the base's pretraining membership split")
    if split_id not in suite.splits() and not (split_id.startswith("finetune/") and split_id[9:] in table):
        raise MembenchError(f"recipe {recipe.id}: generate.evaluate_on names unknown split {split_id}",
                            "see `membench suite list`")
    return split_id


def check(recipe: Recipe, table: dict[str, Recipe], *, replace: bool = False) -> None:
    """Every refusal that needs no training, before anything is written (names taken first: they
    need no hashing of the base)."""
    existing = targets.targets().get(recipe.target_id)
    if existing is not None and not replace:
        if existing.extra.get("recipe", {}).get("sha256") != recipe.sha256:
            raise MembenchError(f"target {recipe.target_id} is already registered (not by this recipe as declared now)",
                                f"pass --replace to train it again, or give the recipe another id")
    split = suite.splits().get(recipe.split_id)
    if split is not None and split.source.get("recipe") != recipe.id and not replace:
        raise MembenchError(f"split {recipe.split_id} is already registered by something else",
                            "pass --replace, or give the recipe another id")
    pools.check(recipe)
    if recipe.kind != "pretrain" and _base_recipe(recipe, table) is None:
        _base_spec(recipe)
    if recipe.kind == "generated":
        evaluation_split(recipe, table)
        if recipe.generate["generator"] is not None and _generator_recipe(recipe, table) is None:
            _generator_spec(recipe)


def _reusable(recipe: Recipe, key: str):
    spec = targets.targets().get(recipe.target_id)
    if spec is None or spec.extra.get("build_key") != key:
        return None
    folder = Path(spec.local_path)
    if not (folder / MANIFEST).exists() or weights_hash(folder) != spec.extra.get("weights_sha256"):
        return None
    if spec.extra.get("split") and not suite.is_materialized(spec.extra["split"]):
        return None
    return spec


def _register_split(recipe: Recipe, key: str, asg, members: list[str], about: dict, extra_files: dict,
                    notes: dict) -> None:
    per_user = recipe.per_user
    pool = recipe.pool
    domain = pool.get("builtin") or pool.get("split") or Path(pool.get("file", "pool")).stem
    label = {"finetune": "fine-tuned on", "generated": "fine-tuned on", "pretrain": "trained on"}[recipe.kind]
    entry = {
        "id": recipe.split_id,
        "family": f"finetune-{recipe.family}",
        "track": "finetune",
        "domain": f"{domain}{' (generated by the base)' if recipe.kind == 'generated' else ''}",
        "source": {"kind": "finetune", "recipe": recipe.id, "recipe_sha256": recipe.sha256, "build_key": key},
        "fields": {"text": "text", "label": "label", **({"group": "group"} if per_user else {})},
        "valid_targets": [recipe.target_id],
        "label_meaning": f"1 = the text was {label} by {recipe.target_id} (randomized assignment, "
                         f"per {'user' if per_user else 'sample'}); 0 = held out from the same pool",
        "description": recipe.description or f"split of recipe {recipe.id}",
    }
    spec = suite.register_split(entry, replace=True)
    groups = None
    if per_user:
        groups = {t: asg.group[t] for t in members + asg.nonmembers}
    materialize(spec, members, asg.nonmembers, source={**entry["source"], "pool": about},
                extra_files=extra_files, notes=notes, groups=groups)


def _extra_files(recipe: Recipe, asg) -> dict:
    files = {}
    if asg.reference_pool:
        files["pool.parquet"] = pd.DataFrame({"text": asg.reference_pool})
    if recipe.per_user:
        files["attacker.parquet"] = pd.DataFrame(
            {"uid": [make_uid(t) for t in asg.attacker], "text": asg.attacker,
             "group": [asg.group[t] for t in asg.attacker]}).sort_values("uid").reset_index(drop=True)
        files["group_labels.parquet"] = pd.DataFrame(
            {"group": asg.member_groups + asg.nonmember_groups,
             "label": [1] * len(asg.member_groups) + [0] * len(asg.nonmember_groups)}
        ).astype({"label": "int8"}).sort_values("group").reset_index(drop=True)
    return files


def _uids(texts) -> list[str]:
    return sorted(make_uid(t) for t in texts)


def _finish(recipe: Recipe, key: str, work: Path, final: Path, manifest: dict, register_entry: dict) -> targets.TargetSpec:
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    for leftover in ("checkpoint.pt", "generated.parquet"):
        (work / leftover).unlink(missing_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    entry = json.loads(json.dumps({**register_entry, "path": str(final)}))  # plain data: no YAML aliases
    return targets.register_target(entry, replace=True)


def _pretrain(recipe: Recipe, table, about, key: str, work: Path, *, progress: bool):
    from ..targets import demo
    from . import pii

    asg = assigning.assign(recipe, table)
    members, nonmembers = list(asg.members), list(asg.nonmembers)
    items = []
    if recipe.pii:
        planted, items = pii.plant(members + nonmembers, recipe.pii["fraction"], recipe.pii["seed"])
        members, nonmembers = planted[: len(members)], planted[len(members) :]
        for it in items:
            text = planted[it["index"]]
            it.update(uid=make_uid(text), member=int(it["index"] < len(members)))
    asg.members, asg.nonmembers = members, nonmembers
    train = recipe.train
    # the tokenizer learns from neither class (the reference pool), or from both alike when the
    # recipe keeps no pool: a tokenizer fitted on the members alone would tell them apart by itself
    if asg.reference_pool:
        tok_texts, tok_from = list(asg.reference_pool), "the recipe's reference pool: neither member nor non-member"
    else:
        tok_texts, tok_from = members + nonmembers, "members and non-members alike (the recipe keeps no reference pool)"
    demo.train(members, work, arch=recipe.arch, tokenizer_texts=tok_texts, tokenizer_from=tok_from,
               epochs=train["epochs"], batch_size=train["batch_size"], lr=train["lr"], seed=recipe.seed,
               progress=progress, desc=f"pretraining {recipe.target_id}")
    info = json.loads((work / "training.json").read_text())
    curve = [[i + 1, x] for i, x in enumerate(info.pop("loss_curve", []))]
    training = {"steps": info.get("steps", len(curve)), "planned_steps": info.get("steps", len(curve)),
                "epochs": train["epochs"], "tokens": int(info["n_tokens"]) * train["epochs"],
                "seconds": float(info["seconds"]), "loss_curve": curve, "eval_curve": [], "stopped_early": False,
                "resumed_from": None, "target_modules": None, "trainer": "benchmark.targets.demo.train (tokenizer and "
                "weights from scratch)"}
    (work / "training.json").write_text(json.dumps({**info, "loss_curve": curve}, indent=1) + "\n")
    extra = _extra_files(recipe, asg)
    if items:
        extra["pii.parquet"] = pd.DataFrame(
            [{"uid": it["uid"], "kind": it["kind"], "value": it["value"], "start": it["start"]} for it in items])
    return asg, members, training, _uids(members), extra, {"pii": {**recipe.pii, "n_texts": len({i["uid"] for i in items}),
                                                                  "n_items": len(items)} if items else None}


def _generated_texts(recipe: Recipe, table, base, key: str, work: Path, *, device: str, progress: bool):
    """The texts a ``generated`` recipe trains on (cached in the work folder) and the facts."""
    from . import generate as generating

    cache = work / "generated.parquet"
    stamp = work / "generated.json"
    if cache.exists() and stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return pd.read_parquet(cache)["text"].tolist(), json.loads(stamp.read_text())["facts"]
    model, tokenizer, who = base.model, base.tokenizer, None
    if recipe.generate["generator"] is not None:
        gen = targets.load_target(recipe.generate["generator"], device=device, dtype="float32")
        model, tokenizer = gen.model, gen.tokenizer
        who = {"id": gen.id, "path": portable(gen.path), "weights_sha256": gen.weights_hash,
               "tokenizer_sha256": gen.tokenizer_hash}
    s = recipe.sizes
    texts, facts = generating.generate(model, tokenizer, table["text"].tolist(),
                                       s["members"] + s["nonmembers"] + s["validation"], recipe.generate,
                                       seed=recipe.seed, device=device, progress=progress, recipe_id=recipe.id)
    facts["generator"] = who or {"id": base.id, "weights_sha256": base.weights_hash, "note": "the base itself"}
    pd.DataFrame({"text": texts}).to_parquet(cache, index=False)
    stamp.write_text(json.dumps({"key": key, "facts": facts}))
    return texts, facts


def uncapped_steps(recipe: Recipe, table) -> int:
    """The optimizer steps ``recipe`` takes without its per-user cap (the same users, texts and
    training otherwise): epochs x ceil(uncapped member texts / batch size)."""
    import math

    uncapped = derive(recipe, recipe.id, defences={"per_user_cap": None}, train={"steps": None})
    n = len(assigning.assign(uncapped, table).members)
    return recipe.train["epochs"] * math.ceil(n / recipe.train["batch_size"])


def group_privacy(dp: dict, texts_per_user: int) -> dict:
    """(epsilon, delta)-DP per example gives (k epsilon, k e^((k-1) epsilon) delta)-DP for a group
    of k examples (Dwork and Roth 2014, Theorem 2.2 and its (epsilon, delta) form): the bound
    for a user whose k texts were all trained on."""
    import math

    k, eps, delta = int(texts_per_user), dp["epsilon_spent"], dp["delta"]
    try:
        user_delta = k * math.exp((k - 1) * eps) * delta
    except OverflowError:
        user_delta = math.inf
    return {"max_trained_texts_per_user": k, "epsilon": round(k * eps, 4),
            "delta": user_delta if math.isfinite(user_delta) else None,
            "meaningful": bool(math.isfinite(user_delta) and user_delta < 1),
            "rule": "group privacy: k * epsilon, k * exp((k - 1) * epsilon) * delta, k = most trained texts of one user"}


def _finetune(recipe: Recipe, table, about, key: str, work: Path, *, device: str, progress: bool):
    from . import trainer

    base = targets.load_target(recipe.base, device=device, dtype="float32")
    facts = {}
    if recipe.kind == "generated":
        texts, facts = _generated_texts(recipe, table, base, key, work, device=device, progress=progress)
        unique = list(dict.fromkeys(texts))
        facts["duplicates_dropped"] = len(texts) - len(unique)
        table = pd.DataFrame({"text": unique, "user": [None] * len(unique)})
    asg = assigning.assign(recipe, table)
    uids = [make_uid(t) for t in asg.members]
    train_cfg = dict(recipe.train)
    steps_rule = None
    if train_cfg["steps"] == "uncapped":
        steps_rule, train_cfg["steps"] = "uncapped", uncapped_steps(recipe, table)
    block, batch = train_cfg["block_size"], train_cfg["batch_size"]
    base_heldout = trainer.mean_loss(base.model, base.tokenizer, asg.nonmembers, block_size=block, batch_size=batch,
                                     device=device)
    model, result = trainer.train(
        base.model, base.tokenizer, uids, asg.members, method=recipe.method, train_cfg=train_cfg,
        defences=recipe.defences, seed=recipe.seed, work_dir=work, key=key, validation=asg.validation,
        device=device, progress=progress, desc=f"fine-tuning {recipe.target_id}")
    trained = set(result.trained_uids)
    members = [t for t in asg.members if make_uid(t) in trained]
    utility = {
        "heldout_loss": _round(trainer.mean_loss(model, base.tokenizer, asg.nonmembers, block_size=block,
                                                 batch_size=batch, device=device)),
        "heldout_texts": len(asg.nonmembers),
        "train_loss": _round(trainer.mean_loss(model, base.tokenizer, members, block_size=block, batch_size=batch,
                                               device=device)),
        "train_texts": len(members),
        "base_heldout_loss": _round(base_heldout),
        "definition": "mean over texts of each text's mean next-token loss (nats per token) over its first "
                      "block_size tokens: heldout = the split's non-member texts (never trained on), train = the "
                      "trained texts, base_heldout = the base model on the held-out texts before fine-tuning",
    }
    trainer.save(model, base.tokenizer, recipe.method, work)
    training = {k: getattr(result, k) for k in ("steps", "planned_steps", "epochs", "tokens", "seconds", "loss_curve",
                                                 "eval_curve", "stopped_early", "resumed_from", "target_modules",
                                                 "trainable_params", "total_params")}
    training.update(result.extra)
    (work / "training.json").write_text(json.dumps(training, indent=1) + "\n")
    defence = {"optimizer": train_cfg["optimizer"], "steps_rule": steps_rule, "steps": result.steps,
               "planned_steps": result.planned_steps, "clipping": result.extra.get("clipping"),
               "dp": result.extra.get("dp")}
    if defence["dp"] is not None and recipe.per_user:
        counts = pd.Series([asg.group[t] for t in members]).value_counts()
        defence["dp"]["user_level"] = group_privacy(defence["dp"], int(counts.max()) if len(counts) else 0)
    base_block = {"id": base.id, "path": portable(base.path), "weights_sha256": base.weights_hash,
                  "tokenizer_sha256": base.tokenizer_hash}
    notes = {"base": base_block, "utility": utility, "defence": defence}
    if facts:
        notes["generated"] = facts
    not_trained = sorted(set(uids) - trained)
    return asg, members, training, result.trained_uids, _extra_files(recipe, asg), {**notes, "planned_not_trained": not_trained}


# Bumped when a rule of the build that no recipe field states changes, so that targets built
# by the old rule are trained again (2: a pretrained base's tokenizer learns from the reference
# pool, no longer from the members).
BUILD_RULES = 2


def _round(value, digits: int = 6):
    return None if value is None else round(float(value), digits)


def _key(recipe: Recipe, about: dict, base_hash: str | None, generator_hash: str | None = None) -> str:
    parts = {"recipe": recipe.sha256, "pool": about["sha256"], "base_weights": base_hash, "rules": BUILD_RULES}
    if generator_hash is not None:
        parts["generator_weights"] = generator_hash
    return sha256_json(parts)


def build(recipe: Recipe, table: dict[str, Recipe], *, device: str = "cpu", replace: bool = False,
          progress: bool = True) -> dict:
    """Train and register ``recipe`` (its base first when that is a recipe not built yet);
    returns a summary. A target already built from the same inputs is reused."""
    check(recipe, table, replace=replace)
    for needed in (_base_recipe(recipe, table), _generator_recipe(recipe, table)):
        if needed is not None:
            build(needed, table, device=device, replace=False, progress=progress)
    base_hash = generator_hash = None
    if recipe.kind != "pretrain":
        from ..targets.loading import resolve_path

        base_hash = weights_hash(resolve_path(_base_spec(recipe)))
        if recipe.kind == "generated" and recipe.generate["generator"] is not None:
            generator_hash = weights_hash(resolve_path(_generator_spec(recipe)))
    pool_table, about = pools.load(recipe)
    key = _key(recipe, about, base_hash, generator_hash)
    reused = None if replace else _reusable(recipe, key)
    if reused is not None:
        return summary(reused, reused=True)
    if targets.targets().get(recipe.target_id) is not None and not replace:
        raise MembenchError(f"target {recipe.target_id} is registered from other inputs (the pool or the base changed)",
                            "pass --replace to train it again")
    with locked(f"finetune-{recipe.id}"):
        reused = None if replace else _reusable(recipe, key)  # another process may have built it meanwhile
        if reused is not None:
            return summary(reused, reused=True)
        final = targets_dir(recipe.target_id)
        work = final.with_name(final.name + ".partial")
        work.mkdir(parents=True, exist_ok=True)
        announce(f"target {recipe.target_id} ({recipe.kind} recipe {recipe.id}; work in {work.name}, moved into "
                 f"place and registered when done, resumed from its last checkpoint if interrupted)", quiet=not progress)
        started = time.time()
        if recipe.kind == "pretrain":
            asg, members, training, trained, extra, notes = _pretrain(recipe, pool_table, about, key, work, progress=progress)
        else:
            asg, members, training, trained, extra, notes = _finetune(recipe, pool_table, about, key, work,
                                                                      device=device, progress=progress)
        weights = weights_hash(work)
        counts = {**asg.counts(), "trained": len(trained), "members_in_split": len(members)}
        manifest = {
            "target": recipe.target_id, "split": recipe.split_id, "recipe": recipe.data, "recipe_sha256": recipe.sha256,
            "declared_in": portable(recipe.declared_in) if recipe.declared_in else None, "build_key": key,
            "pool": about, "counts": counts, "weights_sha256": weights,
            "trained_uids": list(trained), "nonmember_uids": _uids(asg.nonmembers),
            "attacker_uids": _uids(asg.attacker), "validation_uids": _uids(asg.validation),
            "capped_out_uids": _uids(asg.capped_out),
            "training": {k: v for k, v in training.items() if k not in ("loss_curve", "eval_curve")},
            **notes,
        }
        split_id = None
        if asg.nonmembers:  # no held-out texts (a reference model): no membership split
            split_notes = {"recipe": recipe.summary(), "assignment": counts, "target_weights_sha256": weights}
            split_notes.update({k: notes[k] for k in ("utility", "defence") if k in notes})
            _register_split(recipe, key, asg, members, about, extra, split_notes)
            split_id = recipe.split_id
        manifest["split"] = split_id
        tokens_per_s = training["tokens"] / training["seconds"] if training["seconds"] else None
        built = {"steps": training["steps"], "epochs": training["epochs"], "tokens": training["tokens"],
                 "wall_seconds": training["seconds"], "stopped_early": training["stopped_early"],
                 "weights_sha256": weights, "split": split_id}
        built.update({k: notes[k] for k in ("utility", "defence") if k in notes})
        entry = {
            "id": recipe.target_id, "family": "finetuned",
            "description": f"{recipe.kind} recipe {recipe.id}: {recipe.description}".strip(),
            # `recipe` goes into every result record's provenance (runner): the recipe, and what it built
            "recipe": {**recipe.summary(), "built": built}, "recipe_full": recipe.data, "build_key": key,
            "base": notes.get("base"), "split": split_id, "weights_sha256": weights,
            "training": {"steps": training["steps"], "planned_steps": training["planned_steps"],
                         "epochs": training["epochs"], "tokens": training["tokens"],
                         "wall_seconds": training["seconds"], "tokens_per_second": tokens_per_s,
                         "stopped_early": training["stopped_early"],
                         "loss_curve": _thin(training["loss_curve"]), "eval_curve": _thin(training["eval_curve"])},
            "built_seconds": round(time.time() - started, 1),
        }
        spec = _finish(recipe, key, work, final, manifest, entry)
        record_timing(f"target {recipe.target_id}", time.time() - started)
    return summary(spec, reused=False)


def summary(spec, *, reused: bool) -> dict:
    t = spec.extra.get("training", {})
    built = spec.extra.get("recipe", {}).get("built", {})
    return {"target": spec.id, "split": spec.extra.get("split"), "recipe": spec.extra.get("recipe", {}),
            "weights_sha256": spec.extra.get("weights_sha256"), "path": portable(spec.local_path),
            "steps": t.get("steps"), "tokens": t.get("tokens"), "wall_seconds": t.get("wall_seconds"),
            "tokens_per_second": t.get("tokens_per_second"), "stopped_early": t.get("stopped_early"),
            "utility": built.get("utility"), "defence": built.get("defence"), "reused": reused}


def read_manifest(target_id: str) -> dict:
    """The training manifest of a fine-tuned target (what was trained on, and from what)."""
    spec = targets.get_target(target_id)
    if not spec.local_path or not (Path(spec.local_path) / MANIFEST).exists():
        raise MembenchError(f"target {target_id} has no fine-tuning manifest", "name a target built by `membench finetune`")
    return json.loads((Path(spec.local_path) / MANIFEST).read_text())


def finetune_like(target_id: str, texts: list[str], new_id: str, *, device: str = "cpu", progress: bool = True,
                  replace: bool = False, train: dict | None = None) -> dict:
    """Fine-tune the base of ``target_id`` with that target's recipe (method, training,
    defences, seed) on ``texts`` and register it as ``ft/<new_id>`` (SPV-MIA's reference model,
    for instance). Per-user assignment and its cap do not apply to a flat list of texts; the
    texts are all trained on (but for the recipe's validation set, held out when early
    stopping needs one), and no split is registered. ``train`` overrides fields of the recipe's
    ``train`` block (SPV-MIA trains its reference lighter: fewer epochs, a lower learning rate).
    Reused when built before from the same inputs. Returns the summary of ``build``."""
    from ..home import cache_dir

    spec = targets.get_target(target_id)
    full = spec.extra.get("recipe_full")
    if not full:
        raise MembenchError(f"target {target_id} was not built from a recipe", "name a target built by `membench finetune`")
    texts = list(dict.fromkeys(t for t in texts if isinstance(t, str) and t.strip()))
    if len(texts) < 2:
        raise MembenchError(f"finetune_like({target_id}) needs at least two distinct texts", "pass more texts")
    pool_file = cache_dir("finetune-pools") / f"{sha256_json(texts)[:24]}.parquet"
    if not pool_file.exists():
        pd.DataFrame({"text": texts}).to_parquet(pool_file, index=False)
    original = Recipe(full, "")
    validation = original.sizes["validation"] if original.defences.get("early_stopping") else 0
    # a flat list of texts has no per-user cap: a cap variant's step rule ("uncapped") is then the epochs rule
    overrides = {} if original.kind == "pretrain" else {
        "steps": None if original.train.get("steps") == "uncapped" else original.train.get("steps")}
    overrides.update(train or {})
    recipe = derive(original, new_id, kind="finetune" if original.kind == "generated" else original.kind,
                    assign="sample", pool={"file": str(pool_file), "text": "text"},
                    sizes={"members": len(texts) - validation, "nonmembers": 0, "validation": validation,
                           "reference_pool": 0},
                    defences={"per_user_cap": None}, generate=None, pii=None,
                    **({"train": overrides} if overrides else {}),
                    description=f"fine-tuned like {target_id} on {len(texts)} given texts")
    return build(recipe, {**recipes(), recipe.id: recipe}, device=device, replace=replace, progress=progress)


def shadow_keep(n_texts: int, n_shadows: int, seed: int = 0):
    """Carlini et al.'s keep matrix (their ``train.py``): shadow k trains on text j when
    ``keep[k, j]``; every text is in exactly half of the shadows (n_shadows even). A boolean
    array of shape (n_shadows, n_texts)."""
    import numpy as np

    if n_shadows < 2 or n_shadows % 2:
        raise MembenchError(f"shadow models come in IN/OUT halves: n_shadows must be an even number >= 2, got {n_shadows}",
                            "pass n_shadows=2, 4, 8, ...")
    order = np.random.default_rng([seed, 13]).uniform(size=(n_shadows, n_texts)).argsort(0)
    return order < n_shadows // 2


def shadow_models(target_id: str, texts: list[str], n_shadows: int, *, seed: int = 0, device: str = "cpu",
                  progress: bool = True) -> list[dict]:
    """``n_shadows`` shadow fine-tunes of ``target_id`` (a target built from a recipe): shadow k
    is ``finetune_like(target_id, texts[keep[k]])``, the target's recipe (method, training,
    defences, seed) on its half of ``texts`` (``shadow_keep``), registered as
    ``ft/<target>-shadow-<hash>-<k>`` and reused when built before from the same inputs.

    Returns one dict per shadow: ``target`` (its id), ``trained`` (the set of uids of the texts
    it was trained on, read from its manifest: texts set aside for early stopping are not
    trained on), ``reused``, ``steps``, ``tokens``, ``seconds`` (of its training)."""
    spec = targets.get_target(target_id)
    if not spec.extra.get("recipe_full"):
        raise MembenchError(f"shadow models need a target built from a recipe; {target_id} was not",
                            "run the attack on a target built by `membench finetune`")
    texts = list(dict.fromkeys(texts))
    keep = shadow_keep(len(texts), n_shadows, seed)
    key = sha256_json([spec.extra.get("weights_sha256"), spec.extra.get("recipe", {}).get("sha256"),
                       sha256_json(sorted(texts)), n_shadows, seed])[:10]
    stem = target_id.split("/", 1)[-1]
    out = []
    for k in range(n_shadows):
        new_id = f"{stem}-shadow-{key}-{k}"
        chosen = [t for t, inside in zip(texts, keep[k]) if inside]
        summary = finetune_like(target_id, chosen, new_id, device=device, progress=progress)
        manifest = read_manifest(summary["target"])
        training = targets.get_target(summary["target"]).extra.get("training", {})
        out.append({"target": summary["target"], "trained": set(manifest["trained_uids"]),
                    "reused": bool(summary.get("reused")), "steps": training.get("steps"),
                    "tokens": training.get("tokens"), "seconds": training.get("wall_seconds")})
    return out
