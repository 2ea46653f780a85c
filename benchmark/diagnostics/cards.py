"""Data cards: ``data_cards/<split id>.md``, one per registered split.

A card mixes two kinds of text. Generated blocks sit between marker comments::

    <!-- membench:begin NAME -->
    ...
    <!-- membench:end NAME -->

and are rewritten on every ``membench cards`` run from the registry, the split's manifest
(when materialized) and its latest saved diagnostics. Everything outside the markers is
hand-written and never touched: provenance notes, known problems found by people. A new
card starts from a template whose hand-written provenance section is seeded from
``data_cards/_notes/<family>.md`` when that file exists. A block missing from an existing
card (deleted by hand, or added in a later membench version) is appended at the end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MembenchError
from ..home import REPO_ROOT
from ..suite.store import split_dir
from .report import load_saved
from .verdict import RULE

CARDS_DIR = REPO_ROOT / "data_cards"
NOTES_DIR = "_notes"
BLOCKS = ("overview", "counts", "problems", "diagnostics", "validity")
HEADINGS = {
    "overview": None,
    "counts": "## Counts",
    "problems": "## Known problems",
    "diagnostics": "## Diagnostics (latest)",
    "validity": "## Label validity",
}
BLOCK_RE = re.compile(
    r"<!-- membench:begin (?P<name>[a-z_]+) -->\n(?P<body>.*?)<!-- membench:end (?P=name) -->",
    re.S,
)
LENGTH_CONFOUND_AT = 0.6   # word-count AUC (either direction) from which length is a confound
DATE_LEAK_AT = 0.75
OVERLAP_NOTE_AT = 0.2


def card_path(split_id: str, cards_dir: Path = CARDS_DIR) -> Path:
    *folders, name = split_id.split("/")
    return Path(cards_dir).joinpath(*folders, name + ".md")  # ids such as ngram_13_0.8 hold dots


def _manifest(split_id: str) -> dict | None:
    path = split_dir(split_id) / "manifest.json"  # split_dir creates nothing (subdir would)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _fmt(x, digits=3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(ci) -> str:
    return "–" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _licence(spec) -> str:
    for where in (spec.extra, spec.source):
        for key in ("licence", "license"):
            if where.get(key):
                return str(where[key])
    return "not recorded in the registry (see the provenance notes below)"


def _source_lines(spec, manifest) -> list[str]:
    src = spec.source
    shown = {k: v for k, v in src.items() if k not in ("local_names",) and not isinstance(v, dict)}
    lines = [f"- **Source:** " + ", ".join(f"{k} `{v}`" for k, v in shown.items())]
    for k, v in src.items():
        if isinstance(v, dict):
            lines.append(f"- **Source {k}:** " + ", ".join(f"{a} `{b}`" for a, b in v.items()))
    if manifest:
        msrc = manifest.get("source", {})
        origin = msrc.get("origin") or msrc.get("kind") or "unknown"
        where = {"local": "a local copy", "derived": "derived", "builtin": "membench's own builder",
                 "hub": "the Hugging Face Hub"}.get(origin, origin)
        if msrc.get("dir"):
            where += " `" + "/".join(Path(str(msrc["dir"])).parts[-2:]) + "`"
            where += f" (`{msrc['path']}`)" if msrc.get("path") else ""
        if isinstance(msrc.get("parents"), dict):
            where += " from " + ", ".join(f"`{p}` (content hash `{str(h)[:12]}…`)" for p, h in msrc["parents"].items())
        fetched = msrc.get("commit") or msrc.get("revision")
        if fetched:
            where += f", revision `{fetched}`"
        lines.append(f"- **Materialized here from:** {where}")
    return lines


def block_overview(spec, manifest, diag) -> str:
    lines = [
        f"# Data card: `{spec.id}`",
        "",
        " ".join(str(spec.description).split()),
        "",
        f"- **Family / track / domain:** {spec.family} / {spec.track} / {spec.domain}",
        *_source_lines(spec, manifest),
        f"- **Registry revision:** `{spec.source.get('revision', 'not pinned')}`",
        f"- **Licence:** {_licence(spec)}",
        f"- **Fields:** " + ", ".join(f"{k} = `{v}`" for k, v in spec.fields.items()),
        f"- **How members and non-members were chosen (label 1 / 0):** {' '.join(str(spec.label_meaning).split())}",
    ]
    return "\n".join(lines)


def block_counts(spec, manifest, diag) -> str:
    if manifest:
        b, a = manifest.get("counts_before_dedup", {}), manifest.get("counts", {})
        rows = [
            "| | total | members | non-members |",
            "|---|---|---|---|",
            f"| before deduplication | {b.get('total', '–')} | {b.get('members', '–')} | {b.get('nonmembers', '–')} |",
            f"| after deduplication | {a.get('total', '–')} | {a.get('members', '–')} | {a.get('nonmembers', '–')} |",
            "",
            f"Duplicates dropped when materialized: {manifest.get('duplicates_dropped', '–')}. "
            f"Content hash `{str(manifest.get('content_hash', ''))[:16]}…`.",
        ]
        return "\n".join(rows)
    if diag:
        c = diag["counts"]
        return "\n".join([
            "Not materialized in this MEMBENCH_HOME; counts from the diagnosed source "
            f"(`{_subject_name(diag)}`):",
            "",
            "| | total | members | non-members |",
            "|---|---|---|---|",
            f"| before deduplication | {c['rows']} | {c['members']} | {c['nonmembers']} |",
            f"| after deduplication | {c['analyzed']} | {c['analyzed_members']} | {c['analyzed_nonmembers']} |",
        ])
    return f"Not materialized and never diagnosed here: run `membench suite fetch {spec.id}` to count it."


def _subject_name(diag) -> str:
    s = diag.get("subject", {})
    if s.get("kind") == "file":
        path = Path(s.get("path", "?"))
        name = "/".join(path.parts[-3:]) if len(path.parts) >= 3 else str(path)
        return name + (f" ({s['config']})" if s.get("config") else "")
    return s.get("id", "?")


def findings(spec, manifest, diag) -> list[str]:
    """Automatic known problems, each one line."""
    out = []
    if spec.track == "control":
        out.append("Control split: labels are time or source, **not membership**; an attack's AUC "
                   "here is its shift sensitivity.")
    if spec.extra.get("opt_caveat"):
        out.append(f"OPT: {spec.extra['opt_caveat']}.")
    dropped = (manifest or {}).get("duplicates_dropped")
    if dropped is None and diag:
        dropped = diag["counts"]["dropped_rows"]
    if dropped:
        out.append(f"Duplicates: the source holds {dropped} exact duplicate row(s), dropped before "
                   "any scoring (one copy of each text kept).")
    if not diag:
        return out
    if diag["verdict"] != "clean":
        b = diag["baselines"][diag["blind_best"]]
        out.append(f"Distribution shift (**{diag['verdict']}**): the blind baseline `{diag['blind_best']}` "
                   f"({b['description']}) separates members from non-members with AUC "
                   f"{diag['blind_auc']:.3f} {_ci(diag['blind_auc_ci95'])} without the model.")
    ln = diag["lengths"]
    wauc = ln["word_count_auc"]
    if max(wauc, 1 - wauc) >= LENGTH_CONFOUND_AT:
        m, n = ln["members"], ln["nonmembers"]
        out.append(
            f"Length confound: word count alone separates the classes with AUC {max(wauc, 1 - wauc):.2f} "
            f"(out-of-fold length-only baseline {diag['baselines'].get('blind_length', {}).get('auc', float('nan')):.2f}); "
            f"median words {m['words']['median']:.0f} (members) vs {n['words']['median']:.0f} (non-members); "
            f"only {m['share_near_longest']:.0%} of members and {n['share_near_longest']:.0%} of non-members "
            f"come within 10% of the longest text ({ln['longest_words']} words).")
    date = diag["baselines"].get("blind_date")
    if date and date["auc"] >= DATE_LEAK_AT:
        out.append(f"Dates give labels away: the largest year in a text predicts its label with AUC {date['auc']:.3f}.")
    dup = diag["duplicates"]
    if dup["near_duplicate_pairs_across_classes"]:
        out.append(f"Near duplicates across classes: {dup['near_duplicate_pairs_across_classes']} member/non-member "
                   f"pair(s) ({dup['near_duplicate_rule']}).")
    ov = diag["ngram_overlap"]
    if ov["nonmembers_sharing_share"] >= OVERLAP_NOTE_AT:
        out.append(f"13-gram overlap: {ov['nonmembers_sharing_share']:.0%} of non-members share a word 13-gram "
                   "with some member.")
    return out


def block_problems(spec, manifest, diag) -> str:
    found = findings(spec, manifest, diag)
    head = "Found automatically" + ("" if diag else " (never diagnosed: only registry and manifest facts)") + ":"
    return "\n".join([head, ""] + [f"- {f}" for f in found] if found else [head, "", "- none found"])


def block_diagnostics(spec, manifest, diag) -> str:
    if not diag:
        return (f"Never diagnosed. Run `membench diagnose {spec.id}` (or `membench diagnose --file PATH "
                f"--save-as {spec.id}` for a local copy), then `membench cards`.")
    when = diag.get("provenance", {}).get("created_at", "unknown time")
    commit = diag.get("provenance", {}).get("git_commit", "unknown")
    lines = [
        f"Computed {when} from `{_subject_name(diag)}` (membench commit `{str(commit)[:12]}`), "
        f"{diag['counts']['analyzed_members']} members / {diag['counts']['analyzed_nonmembers']} non-members "
        "after deduplication; every score out of fold "
        f"({diag['cross_validation']['folds']}-fold stratified, seed {diag['cross_validation']['seed']}).",
        "",
        f"**Verdict: {diag['verdict']}** (blind AUC {diag['blind_auc']:.3f} {_ci(diag['blind_auc_ci95'])}, "
        f"best baseline `{diag['blind_best']}`). Rule: {RULE}.",
        "",
        "| blind baseline | AUC | 95% CI | TPR at 1% FPR |",
        "|---|---|---|---|",
    ]
    for name, b in diag["baselines"].items():
        t = b["tpr_at_1pct_fpr"]
        lines.append(f"| `{name}`: {b['description']} | {b['auc']:.3f} | {_ci(b['auc_ci95'])} | "
                     f"{_fmt(t['value']) if t['resolvable'] else 'unresolvable'} |")
    ln, dup, ov = diag["lengths"], diag["duplicates"], diag["ngram_overlap"]
    lines += [
        "",
        "| length (words) | median | p10 | p90 | min | max | within 10% of longest |",
        "|---|---|---|---|---|---|---|",
    ]
    for cls in ("members", "nonmembers"):
        w = ln[cls]["words"]
        lines.append(f"| {cls} | {w['median']:.0f} | {w['p10']:.0f} | {w['p90']:.0f} | {w['min']} | {w['max']} | "
                     f"{ln[cls]['share_near_longest']:.0%} |")
    lines += [
        "",
        f"- Duplicates in the diagnosed rows: {dup['exact_duplicate_rows']} exact, "
        f"{dup['normalized_duplicate_rows']} after normalization, {dup['near_duplicate_pairs']} near-duplicate "
        f"pair(s), {dup['near_duplicate_pairs_across_classes']} across classes ({dup['near_duplicate_rule']}).",
        f"- 13-gram overlap: {ov['nonmembers_sharing_share']:.1%} of non-members share a word 13-gram with a member, "
        f"{ov['members_sharing_share']:.1%} of members with a non-member.",
        f"- Word-count AUC (in-sample, higher = member): {ln['word_count_auc']:.3f}.",
    ]
    return "\n".join(lines)


def block_validity(spec, manifest, diag) -> str:
    pats = ", ".join(f"`{p}`" for p in spec.valid_targets) or "none"
    if spec.track == "control":
        return (f"Labels are **not** membership for any target. The control's premise (both classes share "
                f"membership status) holds for targets matching {pats}; there, an AUC away from 0.5 "
                "measures shift.")
    if not spec.valid_targets:
        return ("No registry target is declared valid for these labels (the description says for which models "
                "they hold): `membench run` refuses every pair unless run with `--allow-invalid`, and marks it.")
    text = f"Labels are membership ground truth for targets matching {pats}."
    if spec.extra.get("opt_caveat"):
        text += f" Not for OPT: {spec.extra['opt_caveat']}."
    return text + " The harness refuses other pairs unless run with `--allow-invalid`, and marks them."


RENDER = {
    "overview": block_overview,
    "counts": block_counts,
    "problems": block_problems,
    "diagnostics": block_diagnostics,
    "validity": block_validity,
}


def _wrap(name: str, body: str) -> str:
    return f"<!-- membench:begin {name} -->\n{body.rstrip()}\n<!-- membench:end {name} -->"


def _notes_seed(spec, cards_dir: Path) -> str:
    seed = Path(cards_dir) / NOTES_DIR / f"{spec.family}.md"
    if seed.exists():
        return seed.read_text().strip()
    return ("_Not written yet: where the data came from, how it was collected, its licence terms, and "
            "anything a user should know that the figures do not show._")


def template(spec, blocks: dict, cards_dir: Path) -> str:
    parts = [
        _wrap("overview", blocks["overview"]),
        "",
        "<!-- Text outside membench:begin/end blocks is hand-written: `membench cards` never changes it. -->",
        "",
        "## Provenance notes",
        "",
        _notes_seed(spec, cards_dir),
        "",
        HEADINGS["counts"], "", _wrap("counts", blocks["counts"]), "",
        HEADINGS["problems"], "", _wrap("problems", blocks["problems"]), "",
        "Noted by hand:", "", "- none yet", "",
        HEADINGS["diagnostics"], "", _wrap("diagnostics", blocks["diagnostics"]), "",
        HEADINGS["validity"], "", _wrap("validity", blocks["validity"]), "",
    ]
    return "\n".join(parts)


def merge(existing: str, blocks: dict) -> str:
    """Replace each generated block in ``existing``; append the blocks it lacks."""
    seen = set()

    def repl(m):
        name = m.group("name")
        if name not in blocks:
            return m.group(0)
        seen.add(name)
        return _wrap(name, blocks[name])

    out = BLOCK_RE.sub(repl, existing)
    for name in BLOCKS:
        if name not in seen:
            head = HEADINGS[name]
            out = out.rstrip("\n") + "\n\n" + (f"{head}\n\n" if head else "") + _wrap(name, blocks[name]) + "\n"
    return out


# The one line of a card that changes when the same figures are computed again: when, and
# by which commit. Cards are compared without it, so re-running `diagnose` with identical
# figures neither rewrites a card nor makes `cards --check` fail.
RECOMPUTED = re.compile(r"^(Computed ).+?( from `[^`\n]*` \(membench commit `)[^`\n]*(`\))", re.M)


def comparable(text: str) -> str:
    """A card's text without the time and commit of its diagnostics (what is compared)."""
    return RECOMPUTED.sub(r"\1-\2-\3", text)


STATUS_WORDS = {  # what `write_cards` did, and what `check` would do
    "created": "missing", "updated": "stale", "unchanged": "ok",
}


@dataclass
class CardResult:
    split: str
    path: Path
    status: str  # created | updated | unchanged; with check: missing | stale | ok
    diagnosed: bool
    verdict: str | None

    def as_dict(self) -> dict:
        return {"split": self.split, "path": str(self.path), "status": self.status,
                "diagnosed": self.diagnosed, "verdict": self.verdict}


def render_card(spec, cards_dir: Path = CARDS_DIR) -> tuple[Path, str, dict | None]:
    manifest = _manifest(spec.id)
    diag = load_saved(spec.id)
    blocks = {name: RENDER[name](spec, manifest, diag) for name in BLOCKS}
    path = card_path(spec.id, cards_dir)
    if path.exists():
        try:
            existing = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MembenchError(f"data card {path} is not valid UTF-8", "fix or delete the file") from None
        text = merge(existing, blocks)
    else:
        text = template(spec, blocks, cards_dir)
    return path, text, diag


def write_cards(specs, cards_dir: Path = CARDS_DIR, *, check: bool = False) -> list[CardResult]:
    """Create or update the card of every spec (status created / updated / unchanged).

    A card whose only difference is the time and commit of identical figures is unchanged
    and left as it is. With ``check``, write nothing and say what writing would do:
    missing (would be created), stale (would be rewritten) or ok.
    """
    results = []
    for spec in specs:
        path, text, diag = render_card(spec, cards_dir)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old is None:
            status = "created"
        else:
            status = "unchanged" if comparable(old) == comparable(text) else "updated"
        if not check and status != "unchanged":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        results.append(CardResult(spec.id, path, STATUS_WORDS[status] if check else status,
                                  diag is not None, diag["verdict"] if diag else None))
    return results
