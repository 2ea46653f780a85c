"""The static leaderboard: result files in, plain HTML out (jinja2, autoescaped).

Reads only JSON result files; never imports torch or model code.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..home import REPO_ROOT
from ..results import iter_records

TEMPLATES = REPO_ROOT / "leaderboard_site" / "templates"
DEFAULT_OUT = REPO_ROOT / "leaderboard_site" / "build"


def _fmt(x, digits=3):
    return "–" if x is None else f"{x:.{digits}f}"


def _row(record: dict) -> dict:
    m = record["metrics"]
    tpr1 = m["tpr_at_fpr"].get("0.01", {})
    return {
        "scorer": record["scorer"]["name"],
        "kind": record["scorer"].get("kind", "attack"),
        "target": record["target"]["id"],
        "auc": m["auc"],
        "auc_text": _fmt(m["auc"]),
        "ci_text": f"[{_fmt(m['auc_ci95'][0])}, {_fmt(m['auc_ci95'][1])}]",
        "tpr1_text": _fmt(tpr1.get("value")) if tpr1.get("resolvable") else "unresolvable",
        "n": record["counts"]["n_scored"],
    }


def collect(results_dir: Path) -> list[dict]:
    """One entry per split: its blind baseline rows and its attack rows (best AUC first)."""
    by_split: dict[str, dict] = defaultdict(lambda: {"blind": [], "attacks": []})
    for _, record in iter_records(results_dir):
        entry = by_split[record["split"]["id"]]
        entry["id"] = record["split"]["id"]
        entry["content_hash"] = record["split"]["content_hash"]
        row = _row(record)
        entry["blind" if row["kind"] == "blind_baseline" else "attacks"].append(row)
    out = []
    for split_id in sorted(by_split):
        entry = by_split[split_id]
        entry["attacks"].sort(key=lambda r: -r["auc"])
        best_blind = max((r["auc"] for r in entry["blind"]), default=None)
        entry["blind_auc_text"] = _fmt(best_blind)
        for row in entry["attacks"]:
            row["excess_text"] = "–" if best_blind is None else f"{row['auc'] - best_blind:+.3f}"
        out.append(entry)
    return out


def build(results_dir: Path, out_dir: Path = DEFAULT_OUT) -> Path:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"])
    )
    splits = collect(Path(results_dir))
    html = env.get_template("index.html.j2").render(
        splits=splits,
        version=__version__,
        updated=_dt.date.today().isoformat(),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(html)
    return index
