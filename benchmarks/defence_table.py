"""The defence table of the per-user demo recipe, from published records alone.

    python benchmarks/defence_table.py [--results leaderboard_site/results] [--json]

For ``stdlib-users-full`` and each variant that extends it (``stdlib-users-full-*``), from the
records of ``user_inference`` (group level) and ``loss`` (sample level) on the variant's own
split: both AUCs with their 95% intervals, and from the records' ``provenance.recipe.built``
what the defence was and did (optimizer, steps taken, the clipped fraction, the epsilon spent),
and what it cost (held-out loss; the base's held-out loss for comparison). Also, per variant, the
Pearson correlation of its LOSS scores (and of its user-inference scores) with the undefended
recipe's, over the texts (users) both splits hold: how much the defence changed what the attack
sees. Prints a Markdown table (or JSON); an interval's width is printed after it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

BASELINE = "stdlib-users-full"


def _records(results: Path) -> dict[str, dict[str, tuple[dict, Path]]]:
    out: dict[str, dict[str, tuple[dict, Path]]] = {}
    for path in sorted((results / "finetune").glob(f"{BASELINE}*/ft_*/*.json")):
        record = json.loads(path.read_text())
        recipe = record.get("provenance", {}).get("recipe", {}).get("id")
        name = record["scorer"]["name"]
        if recipe and name in ("user_inference", "loss") and record["split"]["id"] == f"finetune/{recipe}":
            out.setdefault(recipe, {})[name] = (record, path)
    return out


def _scores(record: dict, path: Path) -> pd.Series:
    return pd.read_parquet(path.parent / record["per_sample"]["file"]).set_index("uid")["score"]


def _auc(record: dict | None) -> str:
    """AUC [95% interval] (the interval's width), or '-' without a record."""
    if record is None:
        return "-"
    m = record["metrics"]
    low, high = m["auc_ci95"]
    return f"{m['auc']:.3f} [{low:.3f}, {high:.3f}] ({high - low:.2f})"


def _correlation(base: tuple | None, mine: tuple | None) -> float | None:
    if base is None or mine is None:
        return None
    a, b = _scores(*base), _scores(*mine)
    both = a.index.intersection(b.index)
    return float(np.corrcoef(a[both], b[both])[0, 1]) if len(both) > 2 else None


def rows(results: Path) -> list[dict]:
    table = _records(results)
    baseline = table.get(BASELINE, {})
    out = []
    for recipe in sorted(table, key=lambda r: (r != BASELINE, r)):
        got = table[recipe]
        any_record = next(iter(got.values()))[0]
        built = any_record["provenance"]["recipe"].get("built", {})
        defence, utility = built.get("defence") or {}, built.get("utility") or {}
        clip = defence.get("clipping") or {}
        dp = defence.get("dp") or {}
        out.append({
            "recipe": recipe, "defences": any_record["provenance"]["recipe"].get("defences"),
            "user_inference": _auc(got.get("user_inference", (None,))[0]), "loss": _auc(got.get("loss", (None,))[0]),
            "optimizer": defence.get("optimizer"), "steps": built.get("steps"),
            "epsilon": dp.get("epsilon"), "epsilon_spent": dp.get("epsilon_spent"), "delta": dp.get("delta"),
            "clipped_fraction": clip.get("fraction_clipped"), "heldout_loss": utility.get("heldout_loss"),
            "base_heldout_loss": utility.get("base_heldout_loss"), "train_loss": utility.get("train_loss"),
            "loss_score_correlation": _correlation(baseline.get("loss"), got.get("loss")),
            "user_score_correlation": _correlation(baseline.get("user_inference"), got.get("user_inference")),
        })
    return out


def markdown(table: list[dict]) -> str:
    def f(x, d=3):
        return "-" if x is None else f"{x:.{d}f}"

    lines = ["| recipe | user inference AUC [95% CI] (width) | LOSS AUC [95% CI] (width) | optimizer | steps "
             "| epsilon stated, spent (delta) "
             "| clipped | held-out loss (base) | train loss | corr. with none: LOSS, user inf. |",
             "|---|---|---|---|---:|---|---:|---|---:|---|"]
    for r in table:
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:g}, {r['epsilon_spent']:.3f} ({r['delta']:g})"
        lines.append(f"| `{r['recipe']}` | {r['user_inference']} | {r['loss']} | {r['optimizer'] or '-'} | "
                     f"{r['steps']} | {eps} | {f(r['clipped_fraction'])} | {f(r['heldout_loss'])} "
                     f"({f(r['base_heldout_loss'])}) | {f(r['train_loss'])} | {f(r['loss_score_correlation'])}, "
                     f"{f(r['user_score_correlation'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("leaderboard_site/results"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = rows(args.results)
    print(json.dumps(table, indent=1) if args.json else markdown(table))


if __name__ == "__main__":
    main()
