"""`membench finetune`: build a fine-tuning recipe's target and split (benchmark.finetune)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import finetune, targets
from ..errors import MembenchError
from ..evaluate import finetune_and_compare
from ..finetune.build import check as check_recipe
from ..finetune.plan import chain_text
from . import emit, table
from .run import check_device


def register(sub):
    p = sub.add_parser("finetune", help="fine-tune a recipe's target and register it with its split",
                       description="Train recipe RECIPE (benchmark/finetune/recipes.yaml, or --recipes FILE) "
                       "and register target ft/RECIPE and split finetune/RECIPE; a killed run resumes from "
                       "its last checkpoint. A generated recipe also compares base and fine-tuned model on "
                       "the base's pretraining split (AUCs, paired difference, PII prefix reconstruction and "
                       "template extraction).")
    p.add_argument("recipe", nargs="?", help="recipe id (see --list)")
    p.add_argument("--recipes", type=Path, default=None, metavar="FILE",
                   help="your own recipe file (same format as benchmark/finetune/recipes.yaml)")
    p.add_argument("--list", action="store_true", help="list the recipes and whether each is built")
    p.add_argument("--show", action="store_true", help="print the normalized recipe, its hash and status")
    p.add_argument("--defences", action="store_true",
                   help="the defence comparison of the per-user recipes from the records in --results-dir: AUC "
                   "over users, interval and its width per defence, overlap with the undefended recipe's interval "
                   "and the paired bootstrap over the same users")
    p.add_argument("--scorer", default="user_inference", help="with --defences: the group scorer compared "
                   "(default: user_inference)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--replace", action="store_true", help="train again even if ft/RECIPE is registered")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where a generated recipe writes its comparison records (default: $MEMBENCH_HOME/results)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=handle)


def _status(recipe) -> str:
    spec = targets.targets().get(recipe.target_id)
    if spec is None:
        return "not built"
    return "built" if spec.extra.get("recipe", {}).get("sha256") == recipe.sha256 else "built from another version"


def _list(args) -> int:
    rows, payload = [], []
    for recipe in finetune.recipes(args.recipes).values():
        status = _status(recipe)
        method = recipe.method["kind"]
        rows.append([recipe.id, recipe.kind, recipe.base or "-", method, recipe.assign, status])
        payload.append({"id": recipe.id, "kind": recipe.kind, "base": recipe.base, "method": recipe.method,
                        "assign": recipe.assign, "sha256": recipe.sha256, "status": status,
                        "target": recipe.target_id, "split": recipe.split_id})
    emit(args, payload, table(rows, ["recipe", "kind", "base", "method", "assign", "status"]))
    return 0


def _defences(args) -> int:
    from .. import finetune
    from ..finetune import defences
    from ..home import results_dir as default_results_dir

    rows = defences.table(args.results_dir or default_results_dir(), scorer=args.scorer,
                          recipes_table=finetune.recipes(args.recipes))
    lines = []
    for r in rows:
        if "missing" in r:
            lines.append([r["recipe"], r["defence"], "-", "-", "-", "-", r["missing"]])
            continue
        vs = r.get("vs_parent")
        lines.append([r["recipe"], r["defence"], f"{r['n_users']} ({r['n_member_users']})",
                      f"{r['auc']:.3f} [{r['auc_ci95'][0]:.3f}, {r['auc_ci95'][1]:.3f}]", f"{r['ci95_width']:.3f}",
                      "-" if "intervals_overlap_parent" not in r else ("yes" if r["intervals_overlap_parent"] else "no"),
                      "-" if not vs else f"{vs['auc_difference']:+.3f} [{vs['ci95'][0]:+.3f}, {vs['ci95'][1]:+.3f}] "
                      f"p={_p(vs['p_value'])}"])
    emit(args, rows, table(lines, ["recipe", "defence", "users (members)", f"{args.scorer} AUC [95% CI]", "width",
                                   "overlaps none", "vs none, paired over users"]))
    return 0


def _fmt(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(value: float) -> str:
    """A bootstrap p-value; 0 means no resample crossed zero (below 1/1,000)."""
    return "<0.001" if value == 0 else f"{value:.3g}"


def handle(args) -> int:
    if args.list:
        return _list(args)
    if args.defences:
        return _defences(args)
    if not args.recipe:
        raise MembenchError("name a recipe", "see `membench finetune --list`")
    recipe = finetune.get_recipe(args.recipe, args.recipes)
    if args.show:
        payload = {"recipe": recipe.data, "sha256": recipe.sha256, "declared_in": recipe.declared_in,
                   "target": recipe.target_id, "split": recipe.split_id, "status": _status(recipe)}
        import yaml

        emit(args, payload, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True).rstrip())
        return 0
    check_device(args.device)
    # issue 27: the dependency chain (bases first) and last timings, once the recipe passes its
    # checks and before anything trains
    recipe_table = finetune.recipes(args.recipes)
    check_recipe(recipe, recipe_table, replace=args.replace)
    print(chain_text(recipe, recipe_table), file=sys.stderr if args.json else sys.stdout, flush=True)
    out = finetune_and_compare(args.recipe, recipes_file=args.recipes, device=args.device, replace=args.replace,
                               progress=not args.json, results_dir=args.results_dir)
    verb = "reused (already built from the same inputs)" if out["reused"] else "built"
    lines = [f"{out['target']} {verb}: {out['path']}",
             f"split: {out['split'] or 'none (no held-out texts)'}",
             f"recipe {out['recipe'].get('id')} sha256 {out['recipe'].get('sha256', '')[:16]}, "
             f"weights sha256 {(out['weights_sha256'] or '')[:16]}",
             f"steps {out['steps']}, tokens {out['tokens']}, wall {_fmt(out['wall_seconds'], 1)} s, "
             f"{_fmt(out['tokens_per_second'], 0)} tokens/s" + (", stopped early" if out["stopped_early"] else "")]
    utility = out.get("utility") or {}
    if utility:
        lines.append(f"held-out loss {_fmt(utility.get('heldout_loss'))} (base {_fmt(utility.get('base_heldout_loss'))}, "
                     f"trained texts {_fmt(utility.get('train_loss'))}), nats per token")
    defence = out.get("defence") or {}
    if defence.get("clipping"):
        c = defence["clipping"]
        lines.append(f"clipping ({c['mode']}, max norm {c['max_norm']}): {_fmt(c['fraction_clipped'])} of "
                     f"{c['unit']} gradients were above the bound")
    if defence.get("dp"):
        d = defence["dp"]
        lines.append(f"DP-SGD: epsilon {_fmt(d['epsilon_spent'], 2)} spent of {d['epsilon']} at delta {d['delta']:g} "
                     f"({d['accountant']}), noise multiplier {_fmt(d['noise_multiplier'])}, sampling rate "
                     f"{_fmt(d['sample_rate'], 4)}, per example")
    report = out.get("report")
    if report:
        rows = [[r["scorer"], _fmt(r["base_auc"]), _fmt(r["finetuned_auc"]), f"{r['difference']:+.3f}",
                 f"[{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}]", _p(r["p_value"])] for r in report["scorers"]]
        lines.append(f"\non {report['split']} (the base's pretraining membership split):")
        lines.append(table(rows, ["scorer", "AUC base", "AUC fine-tuned", "difference", "95% CI", "p"]))
        for key, label in (("prefix_reconstruction", "PII prefix reconstruction"),
                           ("template_extraction", "PII template extraction")):
            measure = report.get(key)
            for side in ("members", "nonmembers") if measure else ():
                b, f = measure["base"][side], measure["finetuned"][side]
                lines.append(f"{label}, {side}' items (n={b['n_items']}): base {_fmt(b['rate'])}, "
                             f"fine-tuned {_fmt(f['rate'])}")
    emit(args, out, "\n".join(lines))
    return 0
