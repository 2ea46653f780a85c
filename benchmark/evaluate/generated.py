"""Fine-tuning on generated data: base and fine-tuned model side by side (Akkus et al.).

It runs attacks (``evaluate.run``) on targets the fine-tuned track built, so it stands in the
evaluator, above ``benchmark.finetune`` (which builds them, and which attacks may use).

On the base's own pretraining membership split (its members trained the base), every
feature-based attack is run on the base and on the model fine-tuned on the base's generated
texts (``membench run``'s records, one per scorer and target). For each attack the paired,
class-stratified bootstrap of AUC(fine-tuned) - AUC(base) is taken over the same samples
(``benchmark.metrics.paired_auc_difference``). When the split carries planted PII
(``pii.parquet``), two leakage measures are taken on both models (``finetune.pii``): prefix
reconstruction (the true text before an item given) and template extraction (only the
person's name given, Huang et al.'s templates).

Each record of the fine-tuned model on that split gets a ``generated_data`` block (the
schema describes it): the recipe, both AUCs with their intervals, the paired difference, and
both models' ``prefix_reconstruction`` and ``template_extraction`` rates (``pii_extraction``
repeats ``prefix_reconstruction``, its former name, for readers of older records). The labels stay what they were: membership in the base's
pretraining data, which the fine-tuned model inherits (its weights start from the base); a
registered base split records the fine-tuned target among its valid targets, a shipped one
cannot, and its records are then marked as run outside validity.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import finetune, metrics, registered, results, suite, targets
from ..finetune import pii
from ..finetune.build import evaluation_split
from ..home import results_dir as default_results
from .pipeline import run
from .spec import RunSpec


def _allow_for(split_id: str, target_id: str) -> bool:
    """Make ``split_id``'s labels valid for ``target_id`` when the split is registered; return
    whether a run must be allowed outside validity instead (a shipped split)."""
    spec = suite.get_split(split_id)
    if spec.labels_valid_for(target_id):
        return False
    for entry in registered.entries("splits"):
        if entry["id"] == split_id:
            suite.register_split({**entry, "valid_targets": list(entry["valid_targets"]) + [target_id]}, replace=True)
            return False
    return True


def _scores(results_dir: Path, record: dict) -> pd.Series:
    path = results.record_path(results_dir, record["split"]["id"], record["target"]["id"], record["scorer"]["name"],
                               record["target"].get("revision"))
    return pd.read_parquet(path.parent / record["per_sample"]["file"]).set_index("uid")["score"]


def pii_items(split) -> list[dict]:
    """The planted PII items of a split (with their text and whether it is a member)."""
    path = Path(split.path) / "pii.parquet"
    if not path.exists():
        return []
    items = pd.read_parquet(path)
    texts = split.samples.set_index("uid")["text"]
    labels = split.labels()
    return [{"text": texts[r.uid], "start": int(r.start), "value": r.value, "kind": r.kind, "member": int(labels[r.uid])}
            for r in items.itertuples(index=False)]


def pii_rates(target_id: str, items: list[dict], *, device: str, progress: bool) -> dict:
    """Both leakage measures of ``target_id``: ``{"prefix_reconstruction", "template_extraction"}``."""
    loaded = targets.load_target(target_id, device=device)
    return {"prefix_reconstruction": pii.reconstruction_rates(
                loaded.model, loaded.tokenizer, items, max_length=loaded.max_length, device=device, progress=progress,
                desc=f"prefix reconstruction {target_id}"),
            "template_extraction": pii.template_rates(loaded.model, loaded.tokenizer, items, device=device,
                                                      progress=progress, desc=f"template extraction {target_id}")}


def finetune_and_compare(recipe_id: str, *, recipes_file=None, device: str = "cpu", replace: bool = False,
                         progress: bool = True, results_dir: Path | None = None) -> dict:
    """``finetune.finetune``, then for a ``generated`` recipe the before/after comparison, written
    into ``results_dir`` (default ``$MEMBENCH_HOME/results``), as the summary's ``report``."""
    out = finetune.finetune(recipe_id, recipes_file=recipes_file, device=device, replace=replace, progress=progress)
    recipe = finetune.get_recipe(recipe_id, recipes_file)
    if recipe.kind == "generated":
        out["report"] = compare(recipe, finetune.recipes(recipes_file), results_dir=Path(results_dir or default_results()),
                                device=device, progress=progress)
    return out


def compare(recipe, table, *, results_dir: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Run the comparison for a built ``generated`` recipe; returns the summary it recorded."""
    split_id = evaluation_split(recipe, table)
    base_id, ft_id = recipe.base, recipe.target_id
    allow = _allow_for(split_id, ft_id)
    base_records = {r["scorer"]["name"]: r for r in run(RunSpec.build(
        base_id, split_id, results_dir=results_dir, device=device, progress=progress)).records}
    ft_records = run(RunSpec.build(ft_id, split_id, results_dir=results_dir, device=device, progress=progress,
                                   allow_invalid=allow)).records
    split = suite.ensure(split_id)
    items = pii_items(split)
    pii_block = leak = None
    if items:
        rates = {"base": pii_rates(base_id, items, device=device, progress=progress),
                 "finetuned": pii_rates(ft_id, items, device=device, progress=progress)}
        leak = {measure: {model: rates[model][measure] for model in rates}
                for measure in ("prefix_reconstruction", "template_extraction")}
        pii_block = leak["prefix_reconstruction"]
    uids = split.samples["uid"].tolist()
    labels = split.labels().reindex(uids).to_numpy()
    rows = []
    for record in ft_records:
        name = record["scorer"]["name"]
        base = base_records.get(name)
        if base is None:
            continue
        a = _scores(results_dir, record).reindex(uids).to_numpy(float)
        b = _scores(results_dir, base).reindex(uids).to_numpy(float)
        diff = metrics.paired_auc_difference(labels, a, b)
        block = {
            "recipe": recipe.id, "recipe_sha256": recipe.sha256, "style": recipe.generate["style"],
            "base_target": base_id, "finetuned_target": ft_id,
            "labels": "membership in the base's pretraining data (inherited by the fine-tuned model)",
            "base": {"auc": base["metrics"]["auc"], "auc_ci95": base["metrics"]["auc_ci95"],
                     "weights_sha256": base["target"]["weights_sha256"]},
            "finetuned": {"auc": record["metrics"]["auc"], "auc_ci95": record["metrics"]["auc_ci95"],
                          "weights_sha256": record["target"]["weights_sha256"]},
            "difference": {**diff, "definition": "AUC(fine-tuned) - AUC(base), paired bootstrap over the same samples"},
            "pii_extraction": pii_block,
            **(leak or {"prefix_reconstruction": None, "template_extraction": None}),
        }
        scores = _scores(results_dir, record)
        record = {k: v for k, v in record.items() if k not in ("schema", "per_sample")}
        record["generated_data"] = block
        results.write(results_dir, record, scores.index.tolist(), scores.tolist())
        rows.append({"scorer": name, "base_auc": block["base"]["auc"], "finetuned_auc": block["finetuned"]["auc"],
                     "difference": diff["auc_difference"], "ci95": diff["ci95"], "p_value": diff["p_value"]})
    return {"split": split_id, "base": base_id, "finetuned": ft_id, "scorers": rows, "pii_extraction": pii_block,
            **(leak or {"prefix_reconstruction": None, "template_extraction": None}), "allowed_invalid": allow}
