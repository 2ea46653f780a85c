"""Tables: their columns, and the downloads every table has (CSV, JSON, LaTeX, Markdown).

A column shows a display text (``key``) and sorts by a value (``sort``); a download field
holds the value. A value that is missing for a reason carries the reason in ``<key>_why``
("unresolvable", "not applicable (control split)"), and downloads write that word, never an
empty cell. CSV cells that a spreadsheet would run as a formula are neutralized.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "|", "%", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def col(key, label, *, sort=None, num=False, link=None, help=None, badge=None, href=None):
    """A column: ``link`` names a page kind (the row's ``<link>_slug`` picks the page), ``href`` a
    row field holding an address (an http(s) URL, or a path within the site)."""
    return {"key": key, "label": label, "sort": sort or key, "num": num, "link": link, "help": help, "badge": badge,
            "href": href}


def _ignorable(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch).startswith("C")


def safe_cell(value):
    """A text cell a spreadsheet would treat as a formula gets a leading apostrophe: one that
    starts with = + - @ | % (or their full-width forms) once leading whitespace, newlines and
    control characters are skipped, and one that starts with a tab or a carriage return."""
    if not isinstance(value, str) or not value:
        return value
    stripped = value
    while stripped and _ignorable(stripped[0]):
        stripped = stripped[1:]
    if value[0] in "\t\r" or stripped.startswith(FORMULA_START):
        return "'" + value
    return value


def field_value(row: dict, key: str):
    """The value of a download field; a missing value is the word that says why."""
    value = row.get(key)
    if value is None:
        return row.get(key + "_why") or "none"
    return value


def make_table(tid: str, caption: str, rows, pinned=(), *, columns, fields, reported_only=()) -> dict:
    """A table: ``pinned`` rows above (blind baselines), then ``rows`` (sorted and ranked), then
    ``reported_only`` rows (values papers reported that no shown record reproduces: kept apart,
    after the others, in a body of their own)."""
    return {"id": tid, "caption": caption, "rows": list(rows), "pinned": list(pinned), "columns": columns,
            "fields": fields, "reported_only": list(reported_only)}


def _all_rows(table: dict) -> list[dict]:
    return list(table["pinned"]) + list(table["rows"]) + list(table.get("reported_only") or ())


def _records(table: dict, page: str) -> list[dict]:
    out = []
    for row in _all_rows(table):
        rec = {name: field_value(row, key) for name, key in table["fields"].items()}
        rec["permalink"] = f"{page}#{table['id']}--{row['anchor']}"
        out.append(rec)
    return out


def _display_rows(table: dict) -> list[list[str]]:
    """The table as shown (display texts), for LaTeX and Markdown."""
    return [[str(row.get(c["key"]) if row.get(c["key"]) is not None else "–") for c in table["columns"]]
            for row in _all_rows(table)]


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "−": "-", "–": "--", "≤": r"$\le$", "…": r"\ldots{}", "×": r"$\times$"}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX_SPECIAL))


def tex_escape(text) -> str:
    return _TEX_RE.sub(lambda m: _TEX_SPECIAL[m.group(0)], " ".join(str(text).split()))


def latex(table: dict) -> str:
    """A booktabs ``table`` environment of the table as shown (display texts, LaTeX-escaped)."""
    align = "".join("r" if c["num"] else "l" for c in table["columns"])
    lines = [f"% {table['id']}: exported from the membench leaderboard", "\\begin{table}", "\\centering",
             f"\\caption{{{tex_escape(table['caption'])}}}", f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(tex_escape(c["label"]) for c in table["columns"]) + " \\\\", "\\midrule"]
    lines += [" & ".join(tex_escape(v) for v in values) + " \\\\" for values in _display_rows(table)]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def markdown(table: dict) -> str:
    lines = [f"Table: {_md_cell(table['caption'])}", "",
             "| " + " | ".join(_md_cell(c["label"]) for c in table["columns"]) + " |",
             "|" + "|".join("---:" if c["num"] else "---" for c in table["columns"]) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in values) + " |" for values in _display_rows(table)]
    return "\n".join(lines) + "\n"


def write_downloads(data_dir: Path, table: dict, page: str) -> None:
    """``data/<id>.csv|.json|.tex|.md`` for one table."""
    records = _records(table, page)
    columns = list(table["fields"]) + ["permalink"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    csv_frame = frame.astype(object).map(safe_cell)
    csv_frame.to_csv(data_dir / f"{table['id']}.csv", index=False)
    (data_dir / f"{table['id']}.json").write_text(
        json.dumps({"table": table["id"], "caption": table["caption"], "rows": records}, indent=1, default=str)
    )
    (data_dir / f"{table['id']}.tex").write_text(latex(table), encoding="utf-8")
    (data_dir / f"{table['id']}.md").write_text(markdown(table), encoding="utf-8")
