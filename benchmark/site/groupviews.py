"""Group-level records (user inference, any ``groups`` scorer) on the site, from records alone.

- ``per_user_views``: for a scorer page, each group-level record's per-user view (AUC over users
  binned by how many texts a user contributed, and by how much of an outlier the user is in the
  base model's loss space), as the record carries it (``groups.per_user_view``);
- ``defence_rows``: the defence comparison on the fine-tuned page: every group-level record of
  one scorer on the fine-tuned track, one row per recipe with its defences, so a recipe and its
  variants (``extends:``) with one defence knob each sit side by side.

Both read published records (``results.disclose``): a private split's records carry no
per-user view, and their AUCs are already rounded.
"""

from __future__ import annotations

from .finetune import _defences
from .model import fmt, page_slug, target_label
from .precision import decimals_for, text


def _bins(rows, what: str) -> list[dict]:
    out = []
    for b in rows or []:
        lo, hi = b.get("low"), b.get("high")
        span = f"{fmt(lo, 3 if what == 'outlier' else 0)}–{fmt(hi, 3 if what == 'outlier' else 0)}"
        out.append({"range": span, "n_members": b.get("n_members"), "n_nonmembers": b.get("n_nonmembers"),
                    "auc": "n/a (one class)" if b.get("auc") is None else fmt(b["auc"], 2)})
    return out


def per_user_views(records: list[dict]) -> list[dict]:
    out = []
    for rec in records:
        view = (rec.get("groups") or {}).get("per_user_view") if rec.get("kind") == "group" else None
        if not isinstance(view, dict):
            continue
        out.append({"split": rec["split"]["id"], "target": target_label(rec["target"]),
                    "contribution": view.get("contribution", ""), "by_contribution": _bins(view.get("by_contribution"), "n"),
                    "measure": view.get("outlier_measure"), "by_outlier": _bins(view.get("by_outlier"), "outlier")})
    return out


def _auc_text(m: dict) -> str:
    lo, hi = m["auc_ci95"]
    d = decimals_for(lo, hi)
    return f"{text(m['auc'], d)} [{text(lo, d)}, {text(hi, d)}]"


def defence_rows(site_rows: list[dict]) -> list[dict]:
    """One row per (scorer setting, recipe) of group-level records on the fine-tuned track."""
    rows = []
    for row in site_rows:
        rec = row["record"]
        recipe = (rec.get("provenance") or {}).get("recipe")
        if rec.get("kind") != "group" or rec["split"].get("track") != "finetune" or not isinstance(recipe, dict):
            continue
        m = rec["metrics"]
        tpr = (m.get("tpr_at_fpr") or {}).get("0.1") or {}
        built = recipe.get("built") or {}
        rows.append({"scorer": row["scorer_label"], "scorer_slug": row["scorer_slug"],
                     "recipe": str(recipe.get("id")), "target": rec["target"]["id"],
                     "target_slug": page_slug(rec["target"]["id"]), "defences": _defences(recipe.get("defences")),
                     "auc": _auc_text(m), "auc_value": m["auc"],
                     "tpr10": "unresolvable" if not tpr.get("resolvable") else fmt(tpr.get("value"), 2),
                     "users": f"{m['n_members']} / {m['n_nonmembers']}",
                     "steps": built.get("steps"), "stopped_early": bool(built.get("stopped_early"))})
    return sorted(rows, key=lambda r: (r["scorer"], r["defences"] != "none", r["recipe"]))
