"""The fine-tuned track on the site, from result records alone (no torch, no registry).

- ``recipe_facts``: the recipe that built a fine-tuned target, as its records carry it
  (``provenance.recipe``), for the target page;
- ``family_rows``: the fine-tuned track's rows grouped by recipe family (the split family
  ``finetune-<family>``: pretrain, per-sample, per-user, generated), one table each;
- ``generated_comparisons``: per ``generated`` recipe, the before/after table (each attack's
  AUC on the base and on the fine-tuned model, on the base's pretraining split, with the paired
  bootstrap difference) and the PII extraction rates, plus a plot.
"""

from __future__ import annotations

from collections import defaultdict

from markupsafe import Markup, escape

from .model import fmt, page_slug
from .plots import COLORS, H, LEFT, RIGHT, TOP, W, _Axis

BOTTOM_LABELS = 70


def _method(method: dict) -> str:
    if not isinstance(method, dict):
        return str(method)
    if method.get("kind") == "lora":
        modules = method.get("target_modules") or ["peft default"]
        return (f"LoRA r {method.get('r')}, alpha {method.get('alpha')}, dropout {method.get('dropout')}, "
                f"modules {', '.join(map(str, modules))}")
    return "full fine-tuning" if method.get("kind") == "full" else str(method.get("kind"))


def _defences(defences: dict) -> str:
    if not isinstance(defences, dict):
        return "none"
    parts = []
    if defences.get("per_user_cap") is not None:
        parts.append(f"at most {defences['per_user_cap']} texts per user")
    clip = defences.get("clip")
    if isinstance(clip, dict):
        parts.append(f"{str(clip.get('mode', '')).replace('_', '-')} gradient clipping at {clip.get('max_norm')}")
    stop = defences.get("early_stopping")
    if isinstance(stop, dict):
        parts.append(f"early stopping (patience {stop.get('patience')}, every {stop.get('eval_every')} steps)")
    return "; ".join(parts) or "none"


def recipe_facts(recipes: list) -> list[tuple[str, str]]:
    """(label, text) pairs for a target page, from the first recipe its records carry
    (``provenance.recipe``)."""
    recipe = next((r for r in recipes if isinstance(r, dict)), None)
    if recipe is None:
        return []
    facts = [("recipe", str(recipe.get("id"))), ("recipe sha256", str(recipe.get("sha256", ""))[:16]),
             ("kind", f"{recipe.get('kind')} ({recipe.get('family', recipe.get('assign', ''))})"),
             ("base", str(recipe.get("base") or "none (trained from scratch)")),
             ("method", _method(recipe.get("method"))), ("assignment", f"per {recipe.get('assign')}"),
             ("defences", _defences(recipe.get("defences")))]
    built = recipe.get("built")
    if isinstance(built, dict):
        wall = built.get("wall_seconds")
        rate = f", {built['tokens'] / wall:,.0f} tokens/s" if wall and built.get("tokens") else ""
        facts.append(("training", f"{built.get('steps')} steps, {built.get('epochs')} epochs, "
                                  f"{built.get('tokens'):,} tokens, {fmt(wall, 1)} s{rate}"
                      + (", stopped early" if built.get("stopped_early") else "")))
        if built.get("split"):
            facts.append(("membership split", str(built["split"])))
    return facts


def family_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """The fine-tuned track's (non-blind) rows by recipe family, in a fixed order."""
    out = defaultdict(list)
    for row in rows:
        if row["track"] == "finetune" and not row["blind"]:
            out[row["family"].removeprefix("finetune-")].append(row)
    order = {"per-sample": 0, "per-user": 1, "generated": 2, "pretrain": 3}
    return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], 9), kv[0])))


def _pii_rows(pii: dict | None) -> list[dict]:
    if not isinstance(pii, dict):
        return []
    rows = []
    for side in ("members", "nonmembers"):
        b, f = (pii.get(m, {}).get(side, {}) for m in ("base", "finetuned"))
        rows.append({"side": side, "n_items": b.get("n_items"), "base": fmt(b.get("rate")),
                     "base_n": b.get("n_extracted"), "finetuned": fmt(f.get("rate")), "finetuned_n": f.get("n_extracted")})
    return rows


def generated_comparisons(site_rows: list[dict]) -> list[dict]:
    """One comparison per generated recipe found in the rows' published records (see the module
    docstring; a private split's records carry none)."""
    by_recipe: dict[str, list[dict]] = defaultdict(list)
    for row in site_rows:
        block = row["record"].get("generated_data")
        if isinstance(block, dict) and block.get("recipe"):
            by_recipe[block["recipe"]].append(row)
    out = []
    for rid, site in sorted(by_recipe.items()):
        recs = [r["record"] for r in site]
        rows = []
        for row in sorted(site, key=lambda r: r["scorer_label"]):
            record = row["record"]
            g = record["generated_data"]
            d = g["difference"]
            rows.append({
                "scorer": row["scorer_label"], "scorer_slug": row["scorer_slug"],
                "base_auc": g["base"]["auc"], "base_ci": g["base"]["auc_ci95"],
                "finetuned_auc": g["finetuned"]["auc"], "finetuned_ci": g["finetuned"]["auc_ci95"],
                "base_text": f"{fmt(g['base']['auc'])} [{fmt(g['base']['auc_ci95'][0])}, {fmt(g['base']['auc_ci95'][1])}]",
                "finetuned_text": (f"{fmt(g['finetuned']['auc'])} [{fmt(g['finetuned']['auc_ci95'][0])}, "
                                   f"{fmt(g['finetuned']['auc_ci95'][1])}]"),
                "difference_text": f"{d['auc_difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]",
                "p_text": "<0.001" if d["p_value"] == 0 else f"{d['p_value']:.3g}",  # 1,000 resamples
            })
        first = recs[0]["generated_data"]
        out.append({
            "recipe": rid, "slug": page_slug(rid), "style": first.get("style"), "base": first["base_target"],
            "finetuned": first["finetuned_target"], "base_slug": page_slug(first["base_target"]),
            "finetuned_slug": page_slug(first["finetuned_target"]), "split": recs[0]["split"]["id"],
            "split_slug": page_slug(recs[0]["split"]["id"]), "rows": rows, "pii_rows": _pii_rows(first.get("pii_extraction")),
            "plot": comparison_svg(rows, title=f"AUC on the base's pretraining split: base vs fine-tuned ({rid})"),
        })
    return out


def comparison_svg(rows: list[dict], *, title: str) -> Markup:
    """Each attack's AUC on the base (left marker) and the fine-tuned model (right marker),
    with 95% intervals, joined by a line."""
    lo = min([0.4] + [min(r["base_ci"][0], r["finetuned_ci"][0]) for r in rows])
    lo = max(0.0, round(lo - 0.05, 1))
    y = _Axis(lo, 1.0, False, H - BOTTOM_LABELS, TOP)
    x = _Axis(0, max(1, len(rows)), False, LEFT, W - RIGHT)
    bottom = H - BOTTOM_LABELS
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
           f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{bottom - TOP}" fill="#fff" stroke="#999"/>',
           f'<text x="12" y="{(TOP + bottom) / 2:.0f}" font-size="11" text-anchor="middle" '
           f'transform="rotate(-90 12 {(TOP + bottom) / 2:.0f})">AUC</text>']
    for t in (round(lo + i * (1 - lo) / 4, 2) for i in range(5)):
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y(t) + 3:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(0.5):.1f}" y2="{y(0.5):.1f}" stroke="#aaa" stroke-dasharray="4 3"/>')
    for i, r in enumerate(rows):
        cx = x(i + 0.5)
        pts = []
        for dx, key, color in ((-8, "base", COLORS[0]), (8, "finetuned", COLORS[1])):
            px, auc, (a, b) = cx + dx, r[f"{key}_auc"], r[f"{key}_ci"]
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(max(a, lo)):.1f}" y2="{y(min(b, 1.0)):.1f}" stroke="{color}"/>')
            out.append(f'<circle cx="{px:.1f}" cy="{y(max(auc, lo)):.1f}" r="3.5" fill="{color}"/>')
            pts.append((px, y(max(auc, lo))))
        out.append(f'<line x1="{pts[0][0]:.1f}" y1="{pts[0][1]:.1f}" x2="{pts[1][0]:.1f}" y2="{pts[1][1]:.1f}" stroke="#555"/>')
        out.append(f'<text x="{cx:.1f}" y="{bottom + 12}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-35 {cx:.1f} {bottom + 12})">{escape(r["scorer"])}</text>')
    for i, (label, color) in enumerate((("base", COLORS[0]), ("fine-tuned on generated data", COLORS[1]))):
        out.append(f'<circle cx="{LEFT + 12}" cy="{TOP + 10 + 13 * i}" r="3.5" fill="{color}"/>')
        out.append(f'<text x="{LEFT + 20}" y="{TOP + 13 + 13 * i}" font-size="10">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("\n".join(out))
