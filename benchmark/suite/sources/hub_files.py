"""``hub_files``: named data files of a Hub dataset repository, at their Hub paths.

For datasets whose files are not named after a split (``book_data.jsonl``) or whose rows carry
a natural group (a book, an author) that membench keeps. The entry lists the files as globs
relative to the repository root, exactly as the Hub stores them::

    source:
      kind: hub_files
      repo: swj0419/BookMIA
      revision: <40-hex commit>
      files: [book_data.jsonl]
    fields: {text: snippet, label: label, member_value: 1, group: book}

Each file is a table (jsonl / json / csv / parquet) with a text column and a 0/1 label column;
``fields.group`` names an optional group column. The same globs select the files on the Hub
(``snapshot_download(allow_patterns=...)``) and under ``--from-dir DIR``, so a local copy must
keep the Hub layout. Every bad file or row is one error naming the file and the line.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Literal

import pandas as pd
from pydantic import field_validator

from ...errors import MembenchError
from ...hashing import sha256_file
from .. import readers
from .hub import HubSource
from .parts import Parts

KIND = "hub_files"


def patterns(spec) -> list[str]:
    """The entry's file globs, each relative to the repository root (no ``..``, not absolute)."""
    pats = spec.source.get("files")
    if isinstance(pats, str):
        pats = [pats]
    if not pats or not all(isinstance(p, str) and p.strip() for p in pats):
        raise MembenchError(f"split {spec.id}: source kind {KIND} needs `files`, a list of paths or globs "
                            "in the dataset repository", "fix the entry in splits.yaml")
    for pat in pats:
        pure = PurePosixPath(pat)
        if pure.is_absolute() or ".." in pure.parts:
            raise MembenchError(f"split {spec.id}: file pattern {pat!r} leaves the dataset repository",
                                "give paths relative to the repository root")
    return list(pats)


def find(spec, root: Path) -> dict[str, Path]:
    """Repository-relative path -> local file, for every file the entry's globs select."""
    root = Path(root)
    found: dict[str, Path] = {}
    for pat in patterns(spec):
        hits = sorted(p for p in root.glob(pat) if p.is_file())
        if not hits:
            raise MembenchError(
                f"split {spec.id}: no file {pat} under {root}",
                f"a local copy must keep the Hub layout of {spec.source.get('repo')} ({pat} under the folder "
                "given to --from-dir)",
            )
        for hit in hits:
            found.setdefault(hit.relative_to(root).as_posix(), hit)
    return found


def _groups(frame: pd.DataFrame, path: Path, text_col: str, group_col: str) -> list[tuple[str, str]]:
    if group_col not in frame.columns:
        have = ", ".join(c for c in frame.columns if c != "_line")
        raise MembenchError(f"{path}: no group column '{group_col}' (it has: {have})",
                            "fix `fields.group` in splits.yaml or the file")
    lines = frame["_line"] if "_line" in frame.columns else [None] * len(frame)
    out = []
    for i, (text, group, line) in enumerate(zip(frame[text_col], frame[group_col], lines)):
        if group is None or (not isinstance(group, str) and pd.isna(group)) or not str(group).strip():
            where = f"line {line}" if line is not None and not pd.isna(line) else f"row {i}"
            raise MembenchError(f"{path}: {where}: '{group_col}' is empty", "every row needs its group")
        out.append((text, str(group)))
    return out


def _load(spec, files) -> Parts:
    """Members and non-members (and each text's group, where the entry names one) from the
    entry's files, read from the Hub at the pinned revision or from a local copy."""
    fields = spec.fields
    text_col, label_col = fields["text"], fields["label"]
    group_col = fields.get("group")
    root = files.folder(patterns(spec))
    found = find(spec, root)
    members: list[str] = []
    nonmembers: list[str] = []
    group_of: dict[str, str] = {}
    labels_of_group: dict[str, set[int]] = {}
    several_groups = 0
    for rel, path in found.items():
        frame = readers.read_table(path)
        m, n = readers.labelled_texts(frame, path, text_col, label_col, fields.get("member_value", 1))
        members += m
        nonmembers += n
        if group_col:
            label_of = {t: 1 for t in m} | {t: 0 for t in n}
            for text, group in _groups(frame, path, text_col, group_col):
                if text in group_of and group_of[text] != group:
                    several_groups += 1
                    continue  # the first group a text was met in keeps it
                group_of[text] = group
                labels_of_group.setdefault(group, set()).add(label_of[text])
    source = {
        **files.describe(),
        "repo": spec.source["repo"],
        "paths": sorted(found),
        "files": {rel: sha256_file(path) for rel, path in found.items()},
    }
    notes = {}
    if group_col:
        notes = {
            "group_field": group_col,
            "texts_in_several_groups": several_groups,
            "groups_with_both_labels": sum(len(v) > 1 for v in labels_of_group.values()),
        }
    return Parts(members, nonmembers, source, notes=notes, groups=group_of if group_col else None)


class HubFilesSource(HubSource):
    """``hub_files``: named data files of a Hub dataset repository (globs from its root)."""

    kind: Literal["hub_files"]
    files: list[str]

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("files")
    @classmethod
    def _inside_the_repository(cls, value):
        if not value or not all(p.strip() for p in value):
            raise ValueError(f"source kind {KIND} needs `files`, a list of paths or globs in the dataset repository")
        for pat in value:
            pure = PurePosixPath(pat)
            if pure.is_absolute() or ".." in pure.parts:
                raise ValueError(f"file pattern {pat!r} leaves the dataset repository")
        return value

    def read(self, spec, files) -> Parts:
        return _load(spec, files)
