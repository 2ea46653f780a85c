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


def _family_key(scorer: str, recipe: dict) -> str:
    """A recipe and its defence variants share everything but their id, description and
    defences (and what the build made of them): the key of the family they form."""
    shared = {k: v for k, v in recipe.items() if k not in ("id", "sha256", "description", "defences", "built")}
    return scorer + "\x00" + repr(sorted(shared.items(), key=lambda kv: kv[0]))


def defence_rows(site_rows: list[dict]) -> list[dict]:
    """One row per (scorer setting, recipe) of group-level records on the fine-tuned track, with
    its interval's width and, for a defence variant, whether that interval overlaps the
    undefended recipe's (same scorer, same recipe but for the defences)."""
    rows = []
    for row in site_rows:
        rec = row["record"]
        recipe = (rec.get("provenance") or {}).get("recipe")
        if rec.get("kind") != "group" or rec["split"].get("track") != "finetune" or not isinstance(recipe, dict):
            continue
        m = rec["metrics"]
        lo, hi = m["auc_ci95"]
        tpr = (m.get("tpr_at_fpr") or {}).get("0.1") or {}
        built = recipe.get("built") or {}
        rows.append({"scorer": row["scorer_label"], "scorer_slug": row["scorer_slug"],
                     "recipe": str(recipe.get("id")), "target": rec["target"]["id"],
                     "target_slug": page_slug(rec["target"]["id"]), "defences": _defences(recipe.get("defences")),
                     "auc": _auc_text(m), "auc_value": m["auc"], "ci": (lo, hi),
                     "width": text(hi - lo, decimals_for(lo, hi)),
                     "tpr10": "unresolvable" if not tpr.get("resolvable") else fmt(tpr.get("value"), 2),
                     "users": f"{m['n_members']} / {m['n_nonmembers']}",
                     "steps": built.get("steps"), "stopped_early": bool(built.get("stopped_early")),
                     "family": _family_key(row["scorer_label"], recipe), "overlaps_none": "–"})
    undefended = {r["family"]: r for r in rows if r["defences"] == "none"}
    for r in rows:
        parent = undefended.get(r["family"])
        if parent is not None and r is not parent:
            (lo, hi), (plo, phi) = r["ci"], parent["ci"]
            r["overlaps_none"] = "yes" if lo <= phi and plo <= hi else "no"
    return sorted(rows, key=lambda r: (r["scorer"], r["defences"] != "none", r["recipe"]))


def defence_overlap_notes(rows: list[dict]) -> list[str]:
    """Per scorer and family: a sentence saying which defences' intervals overlap the
    undefended recipe's (those the table cannot tell from no defence) and which do not."""
    notes = []
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    for family in families.values():
        parent = next((r for r in family if r["defences"] == "none"), None)
        variants = [r for r in family if r is not parent]
        if parent is None or not variants:
            continue
        overlap = [r["recipe"] for r in variants if r["overlaps_none"] == "yes"]
        apart = [r["recipe"] for r in variants if r["overlaps_none"] == "no"]
        head = f"{parent['scorer']} on {parent['recipe']} ({parent['users']} users, interval width {parent['width']}): "
        parts = []
        if overlap:
            parts.append(("the interval of " + ", ".join(overlap) + (" overlaps" if len(overlap) == 1 else " overlap")
                          + " the undefended one, so this sample cannot tell "
                          + ("that defence" if len(overlap) == 1 else "those defences") + " from none"))
        if apart:
            parts.append("the interval of " + ", ".join(apart) + " lies apart from the undefended one")
        notes.append(head + "; ".join(parts) + ".")
    return notes
