"""Row labels, scorer-setting pages and the catalog, from the display blocks the gate wrote.

A record's display name (``display.name``: the class's title plus its setting, e.g. "Min-K%
Prob (k=0.1)", "LOSS (bfloat16)") says which setting or ablation it is. Two records of one
table can still share it when they differ only in a key part the name does not carry (a
scorer or submission version, another weights file of the same target, another version of
the split, the parameters of a submission): then each row's label adds the key parts that tell
them apart ("LOSS (weights 1a2b3c4d)", "my_scorer (version 2)"), so every setting that differs
is its own row with its own name and none is silently dropped. On a private split the
label-dependent parts (the split's content hash, the calibration hash, the hashes of a target
trained on the split) are never shown: rows that differ only there are numbered by when they
were made.

Each scorer setting (a class and its setting) has a page; the catalog groups a method with its
ablations (classes whose ``method`` is another class) and their settings.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(name: str) -> str:
    return _SLUG.sub("-", name).strip("-") or "_"


def _short(value) -> str | None:
    return str(value)[:8] if value else None


def _facets(row: dict) -> dict[str, str | None]:
    """What may tell two rows of one display name apart, as label texts (None: not shown)."""
    rec, private = row["record"], row["private"]
    target = rec.get("target") or {}
    sub = rec.get("submission") if isinstance(rec.get("submission"), dict) else {}
    ref = (rec.get("provenance") or {}).get("reference")
    params = ", ".join(f"{k}={v}" for k, v in sorted(row["params"].items()))
    return {
        "params": params or None,
        "version": f"version {row['scorer_version']}",
        "submission": f"submission version {sub['version']}" if sub.get("version") is not None else None,
        "reference": f"reference {ref.get('id')}" if isinstance(ref, dict) else None,
        "context": f"context {target['max_length']}" if target.get("max_length") else None,
        "weights": None if private else (f"weights {_short(target.get('weights_sha256'))}"
                                         if target.get("weights_sha256") else None),
        "tokenizer": None if private else (f"tokenizer {_short(target.get('tokenizer_sha256'))}"
                                           if target.get("tokenizer_sha256") else None),
        "split": None if private else f"split {_short(rec['split'].get('content_hash'))}",
    }


def _join(*parts) -> str:
    return ", ".join(p for p in parts if p)


def label_rows(rows: list[dict]) -> None:
    """Give every row ``scorer_label`` (unique within its split, target, subset and unit),
    ``setting``, ``setting_text`` and a site-wide unique ``anchor``."""
    groups = defaultdict(list)
    for row in rows:
        groups[(row["split"], row["target"], row["subset"] or "", row["unit"], row["display"]["name"])].append(row)
    for row in rows:
        row["extra"] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        facets = [_facets(r) for r in members]
        for name in facets[0]:
            values = [f[name] for f in facets]
            if len(set(values)) > 1:
                for row, value in zip(members, values):
                    if value:
                        row["extra"].append(value)
        seen = defaultdict(list)
        for row in members:
            seen[tuple(row["extra"])].append(row)
        for same in seen.values():  # only parts no page may show differ: number them by when they were made
            if len(same) > 1:
                same.sort(key=lambda r: (r["created_at"], r["code_sha256"], r["scorer"]))
                for i, row in enumerate(same, 1):
                    row["extra"].append(f"#{i}")
    for row in rows:
        display = row["display"]
        row["setting"] = _join(display["setting"], *row["extra"])
        row["setting_text"] = row["setting"] or "default"
        row["scorer_label"] = display["title"] + (f" ({row['setting']})" if row["setting"] else "")
        row["anchor"] = "r-" + _slug(f"{row['split']}--{row['target']}--{row['scorer_id']}"
                                     + (f"--{row['setting']}" if row["setting"] else "")
                                     + (f"--rest-{row['subset']}" if row["subset"] else "")
                                     + ("--groups" if row["unit"] == "groups" else ""))
    seen = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["anchor"], r["scorer_label"], r["created_at"])):
        seen[row["anchor"]].append(row)
    for same in seen.values():  # labels that print alike in a slug still get distinct anchors
        if len(same) > 1:
            for i, row in enumerate(same[1:], 2):
                row["anchor"] += f"-{i}"


def _page_slug(sid: str, setting: str) -> str:
    return _slug(sid) + (f"--{_slug(setting)}" if setting else "")


def setting_pages(rows: list[dict]) -> tuple[dict, list[dict]]:
    """(one page per scorer setting, by slug; the catalog: methods with their classes and
    settings). Gives every row its page's ``scorer_slug``."""
    pages: dict[tuple, dict] = {}
    for row in sorted(rows, key=lambda r: r["created_at"]):
        display = row["display"]
        key = (row["scorer_id"], row["kind"], display["setting"])
        page = pages.setdefault(key, {
            "id": row["scorer_id"], "kind": row["kind"], "setting": display["setting"], "rows": [],
            "versions": set(), "code_hashes": set(), "submission": None, "model_free": row["model_free"],
        })
        page["display"] = display  # the newest record's words
        page["rows"].append(row)
        page["versions"].add(row["scorer_version"])
        page["code_hashes"].add(row["code_sha256"])
        if isinstance(row["submission"], dict):
            page["submission"] = row["submission"]
    slugs = defaultdict(list)
    for key, page in pages.items():
        slugs[_page_slug(page["id"], page["setting"])].append(key)
    by_slug = {}
    for slug, keys in slugs.items():
        for key in keys:
            unique = slug if len(keys) == 1 else f"{slug}-{hashlib.sha256(repr(key).encode()).hexdigest()[:8]}"
            page = pages[key]
            page.update(slug=unique, name=page["display"]["name"], title=page["display"]["title"],
                        method=page["display"]["method"], method_title=page["display"]["method_title"],
                        versions=sorted(page["versions"]), code_hashes=sorted(page["code_hashes"]),
                        settings=sorted({r["setting_text"] for r in page["rows"]}))
            for row in page["rows"]:
                row["scorer_slug"] = unique
            by_slug[unique] = page
    methods: dict[str, dict] = {}
    for page in sorted(by_slug.values(), key=lambda p: (p["setting"] != "", p["name"].lower(), p["slug"])):
        m = methods.setdefault(page["method"], {"id": page["method"], "title": page["method_title"], "classes": {}})
        cls = m["classes"].setdefault(page["id"], {"id": page["id"], "title": page["title"], "kind": page["kind"],
                                                    "ablation": page["id"] != page["method"], "pages": []})
        cls["pages"].append(page)
        if not cls["ablation"]:
            m["title"] = page["display"]["title"] if not page["setting"] else m["title"]
    catalog = []
    kinds = {"attack": 0, "submission": 1, "blind_baseline": 2}
    for m in sorted(methods.values(), key=lambda m: (min(kinds.get(c["kind"], 3) for c in m["classes"].values()),
                                                      m["title"].lower(), m["id"])):
        classes = sorted(m["classes"].values(), key=lambda c: (c["ablation"], c["title"].lower(), c["id"]))
        full = next((c for c in classes if not c["ablation"]), None)
        first = (full or classes[0])["pages"][0]["display"]
        catalog.append({"id": m["id"], "title": m["title"], "classes": classes, "kind": classes[0]["kind"],
                        "citation": first["method_citation"] if first["method_citation"] else first["citation"]})
    return by_slug, catalog


def unique_slugs(rows: list[dict]) -> None:
    """Split and target names that share a page slug ('a b' and 'a-b') get a short hash each, so
    no page is overwritten by another."""
    for kind, name_key in (("split", "split"), ("target", "target_id")):
        names_by_slug = defaultdict(set)
        for row in rows:
            if row[kind + "_slug"]:
                names_by_slug[row[kind + "_slug"]].add(row[name_key])
        for row in rows:
            slug = row[kind + "_slug"]
            if slug and len(names_by_slug[slug]) > 1:
                row[kind + "_slug"] = f"{slug}-{hashlib.sha256(row[name_key].encode()).hexdigest()[:8]}"
