"""Source loaders: turn a split's source files into member and non-member texts.

One function per source kind of splits.yaml. Each returns ``Parts`` (members, non-members,
optional neighbours, provenance); ``store.materialize`` normalizes them onto disk. The loaders
take a file source (``sources.HubFiles`` or ``sources.LocalFiles``), never a URL, so a Hub
fetch and a local mirror run the same parsing code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file, sha256_files
from . import readers

NEIGHBOR_SUFFIX = "_neighbors_25_bert_in_place_swap"


@dataclass
class Parts:
    members: list[str]
    nonmembers: list[str]
    source: dict
    neighbors: dict[str, list[str]] | None = None  # text -> its stored neighbours
    notes: dict = field(default_factory=dict)  # extra manifest entries (e.g. overlap dropped)
    groups: dict[str, str] | None = None  # text -> its group, where the entry names fields.group


def _hashes(paths) -> dict:
    out = {}
    for rel, path in paths.items():
        if path is not None:
            p = Path(path)
            out[rel] = sha256_file(p) if p.is_file() else sha256_files(f for f in p.rglob("*") if f.is_file())
    return out


# --------------------------------------------------------------------------- MIMIR


def mimir_paths(source: dict) -> dict[str, str]:
    """Paths inside the MIMIR dataset repository for one config and sub-split.

    ``<cache>/train/<config>[_<subset>].jsonl`` holds members, ``.../test/...`` non-members,
    one JSON string per line; neighbours sit in ``train_neighbors/`` and ``test_neighbors/``
    with the suffix ``_neighbors_25_bert_in_place_swap``, one JSON list per line, parallel to
    the texts. Configs without a sub-split have no ``_<subset>`` suffix.
    """
    cache = source["cache"]
    name = source["config"] + (f"_{source['subset']}" if source.get("subset") else "")
    return {
        "members": f"{cache}/train/{name}.jsonl",
        "nonmembers": f"{cache}/test/{name}.jsonl",
        "member_neighbors": f"{cache}/train_neighbors/{name}{NEIGHBOR_SUFFIX}.jsonl",
        "nonmember_neighbors": f"{cache}/test_neighbors/{name}{NEIGHBOR_SUFFIX}.jsonl",
    }


def load_mimir(spec, files) -> Parts:
    rel = mimir_paths(spec.source)
    got = {
        "members": files.file(rel["members"]),
        "nonmembers": files.file(rel["nonmembers"]),
        "member_neighbors": files.file(rel["member_neighbors"], required=False),
        "nonmember_neighbors": files.file(rel["nonmember_neighbors"], required=False),
    }
    members = readers.read_strings(got["members"])
    nonmembers = readers.read_strings(got["nonmembers"])
    neighbors = None
    if got["member_neighbors"] is not None and got["nonmember_neighbors"] is not None:
        neighbors = {}
        for texts_key, nb_key, texts in (
            ("members", "member_neighbors", members),
            ("nonmembers", "nonmember_neighbors", nonmembers),
        ):
            lists = readers.read_string_lists(got[nb_key])
            if len(lists) != len(texts):
                raise MembenchError(
                    f"{got[nb_key]} has {len(lists)} lines but {got[texts_key]} has {len(texts)}",
                    "the two files must be parallel, one line per text: copy or download them again",
                )
            for text, nbs in zip(texts, lists):
                neighbors.setdefault(text, nbs)
    source = {
        **files.describe(),
        "repo": spec.source["repo"],
        "config": spec.source["config"],
        "subset": spec.source.get("subset"),
        "files": {rel[k]: v for k, v in _hashes(got).items()},
    }
    return Parts(members, nonmembers, source, neighbors)


# --------------------------------------------------------------------------- datasets


def load_hf_dataset(spec, files) -> Parts:
    """A Hub dataset split with a text and a label column (WikiMIA, WikiMIA-24), or a local
    copy of it as jsonl / json / csv / parquet / ``save_to_disk``."""
    src, fields = spec.source, spec.fields
    names = [src["split"], *src.get("local_names", [])]
    root = files.folder([f"*{src['split']}*", "*dataset_dict.json", "*dataset_info.json", "*state.json"])
    path, frame = readers.find_table(root, names, split=src["split"])
    members, nonmembers = labelled_texts(frame, path, fields["text"], fields["label"], fields.get("member_value", 1))
    groups = text_groups(frame, path, fields["text"], fields["group"]) if fields.get("group") else None
    shown = str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else str(path)
    source = {
        **files.describe(),
        "repo": src["repo"],
        "split": src["split"],
        "path": shown,
        "files": _hashes({shown: path}),
    }
    return Parts(members, nonmembers, source, groups=groups)


def labelled_texts(frame: pd.DataFrame, path, text_col: str, label_col: str, member_value=1):
    """(members, non-members) from a table with a text and a 0/1 label column; every bad row
    is one error naming the file and the line (or row)."""
    for col in (text_col, label_col):
        if col not in frame.columns:
            have = ", ".join(c for c in frame.columns if c != "_line")
            raise MembenchError(f"{path}: no column '{col}' (it has: {have})",
                                "name the text and label columns (--text-field, --label-field)")
    lines = frame["_line"] if "_line" in frame.columns else [None] * len(frame)
    members, nonmembers = [], []
    for i, (text, label, line) in enumerate(zip(frame[text_col], frame[label_col], lines)):
        where = f"line {line}" if line is not None and not pd.isna(line) else f"row {i}"
        if not isinstance(text, str) or not text.strip():
            raise MembenchError(f"{path}: {where}: '{text_col}' is empty or not text", "fix the file")
        try:
            number = float(label)
            value = int(number) if number.is_integer() else None
        except (TypeError, ValueError):
            value = None
        if value not in (0, 1):
            raise MembenchError(f"{path}: {where}: label {label!r} is not 0 or 1", "fix the file (1 = member)")
        (members if value == int(member_value) else nonmembers).append(text)
    return members, nonmembers


def text_groups(frame: pd.DataFrame, path, text_col: str, group_col: str) -> dict[str, str]:
    """Each text's group (user, author, book, repository) from the column a registry entry
    names as ``fields.group``: the split then has a ``group`` column, and its diagnostics fold
    by group. A row without a group, or a text given two groups, is one error."""
    if group_col not in frame.columns:
        have = ", ".join(c for c in frame.columns if c != "_line")
        raise MembenchError(f"{path}: no group column '{group_col}' (it has: {have})",
                            "fix fields.group, or leave it out when the source has no groups")
    out: dict[str, str] = {}
    for i, (text, group) in enumerate(zip(frame[text_col], frame[group_col])):
        if group is None or (isinstance(group, float) and group != group) or not str(group).strip():
            raise MembenchError(f"{path}: row {i} has no '{group_col}'", "give every row its group")
        if out.setdefault(text, str(group)) != str(group):
            raise MembenchError(f"{path}: row {i}: one text in two groups ({out[text]!r} and {str(group)!r})",
                                "a text belongs to one group: fix the file")
    return out


# --------------------------------------------------------------------------- local files

TEXT_FIELDS = ("text", "input")  # looked for, in order, when no text field is named


def read_local_table(path: Path, config: str | None = None) -> pd.DataFrame:
    """A researcher's own file: jsonl / json / csv / parquet, or a ``save_to_disk`` folder (a
    Dataset, or a DatasetDict with ``config`` naming its split)."""
    path = Path(path)
    if not path.exists():
        raise MembenchError(f"{path} does not exist", "pass an existing jsonl/json/csv/parquet file or save_to_disk folder")
    if path.is_dir():
        if (path / "dataset_dict.json").exists():
            return readers.read_saved_dataset(path, config)
        return readers.read_saved_dataset(path)
    return readers.read_table(path)


def default_text_field(frame: pd.DataFrame, path) -> str:
    for name in TEXT_FIELDS:
        if name in frame.columns:
            return name
    have = ", ".join(c for c in frame.columns if c != "_line")
    raise MembenchError(f"{path}: no 'text' or 'input' column (it has: {have})", "name it with --text-field")


def load_local_file(spec) -> Parts:
    """A split registered from a local file (``membench suite add`` / ``run --file``)."""
    src, fields = spec.source, spec.fields
    path = Path(src["path"])
    frame = read_local_table(path, src.get("config"))
    members, nonmembers = labelled_texts(frame, path, fields["text"], fields["label"], fields.get("member_value", 1))
    groups = text_groups(frame, path, fields["text"], fields["group"]) if fields.get("group") else None
    source = {"origin": "local_file", "file": path.name, "config": src.get("config"),
              "files": _hashes({path.name: path})}
    return Parts(members, nonmembers, source, groups=groups)


# --------------------------------------------------------------------------- controls


def _class_texts(split, label: int) -> list[str]:
    labels = split.labels()
    chosen = split.samples["uid"].map(labels) == label
    return split.samples.loc[chosen, "text"].tolist()


def load_control(spec, parent) -> Parts:
    """A control from materialized parent splits; ``parent(split_id)`` loads one.

    ``classes``: label 1 = one class of one split, label 0 = one class of another; texts
    present on both sides are dropped (and counted). ``null``: one class of one split cut into
    seeded random halves.
    """
    src = spec.source
    builder = src.get("builder")
    if builder == "classes":
        pos_split, neg_split = parent(src["positive"]["split"]), parent(src["negative"]["split"])
        pos = _class_texts(pos_split, int(src["positive"]["label"]))
        neg = _class_texts(neg_split, int(src["negative"]["label"]))
        overlap = set(pos) & set(neg)
        pos = [t for t in pos if t not in overlap]
        neg = [t for t in neg if t not in overlap]
        parents = {pos_split.id: pos_split.content_hash, neg_split.id: neg_split.content_hash}
        notes = {"overlap_dropped": len(overlap)}
    elif builder == "null":
        of = parent(src["of"]["split"])
        texts = sorted(_class_texts(of, int(src["of"]["label"])))  # sorted: order-free input
        order = np.random.default_rng(int(src["seed"])).permutation(len(texts))
        half = len(texts) // 2
        pos = [texts[i] for i in order[:half]]
        neg = [texts[i] for i in order[half:]]
        parents = {of.id: of.content_hash}
        notes = {}
    else:
        raise MembenchError(f"split {spec.id}: unknown control builder {builder!r}", "fix splits.yaml")
    if not pos or not neg:
        raise MembenchError(
            f"control {spec.id} would have an empty class ({len(pos)} vs {len(neg)} texts)",
            "check the parent splits and the control's source in splits.yaml",
        )
    source = {
        "origin": "derived",
        "builder": builder,
        "revision": src.get("revision"),
        "parents": parents,
        "label_meaning": spec.label_meaning,
    }
    return Parts(pos, neg, source, notes=notes)


def parent_ids(spec) -> list[str]:
    src = spec.source
    if src.get("builder") == "classes":
        return [src["positive"]["split"], src["negative"]["split"]]
    if src.get("builder") == "null":
        return [src["of"]["split"]]
    return []
