"""Reading source files (jsonl, json, csv, parquet, ``save_to_disk`` folders) into rows.

Every reader fails with one line naming the file (and the line, for line-based formats) when
the file is truncated or malformed: a half-downloaded mirror must never turn into a split
with silently fewer rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import MembenchError

TABLE_EXTS = ("jsonl", "json", "csv", "parquet")
_REFETCH = "the file looks truncated or corrupted: copy or download it again"


def json_lines(path: Path):
    """Yield (line number, parsed value) for every non-blank line of a JSON-lines file."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MembenchError(f"{path}: line {number}: not UTF-8 ({exc.reason})", _REFETCH) from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise MembenchError(f"{path}: line {number}: not valid JSON ({exc.msg})", _REFETCH) from None


def read_strings(path: Path) -> list[str]:
    """A file holding one JSON string per line (MIMIR's member / non-member files)."""
    out = []
    for number, value in json_lines(path):
        if not isinstance(value, str):
            raise MembenchError(
                f"{path}: line {number}: expected a JSON string, got {type(value).__name__}", _REFETCH
            )
        out.append(value)
    return out


def read_string_lists(path: Path) -> list[list[str]]:
    """A file holding one JSON list of strings per line (MIMIR's neighbour files)."""
    out = []
    for number, value in json_lines(path):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise MembenchError(f"{path}: line {number}: expected a JSON list of strings", _REFETCH)
        out.append(value)
    return out


def read_table(path: Path) -> pd.DataFrame:
    """A jsonl / json / csv / parquet file, or a ``save_to_disk`` Dataset folder, as a DataFrame."""
    path = Path(path)
    if path.is_dir():
        return read_saved_dataset(path)
    suffix = path.suffix.lstrip(".").lower()
    if suffix == "jsonl" or (suffix == "json" and _looks_like_lines(path)):
        rows = []
        for number, value in json_lines(path):
            if not isinstance(value, dict):
                raise MembenchError(f"{path}: line {number}: expected a JSON object", _REFETCH)
            value["_line"] = number
            rows.append(value)
        return pd.DataFrame(rows)
    if suffix == "json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", "?")
            raise MembenchError(f"{path}: line {line}: not valid JSON", _REFETCH) from None
        frame = pd.DataFrame(data)
        frame["_line"] = None
        return frame
    if suffix == "csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MembenchError(f"{path}: {first}", _REFETCH) from None
        frame["_line"] = range(2, len(frame) + 2)  # line 1 is the header
        return frame
    if suffix == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            raise MembenchError(f"{path}: not a readable parquet file ({type(exc).__name__})", _REFETCH) from None
        frame["_line"] = None
        return frame
    raise MembenchError(f"{path}: unsupported format '.{suffix}'", f"use one of: {', '.join(TABLE_EXTS)}, or a save_to_disk folder")


def _looks_like_lines(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(1).strip()
    return head == b"{"


def read_saved_dataset(path: Path, split: str | None = None) -> pd.DataFrame:
    """A ``datasets`` ``save_to_disk`` folder (a Dataset, or a DatasetDict with ``split``)."""
    from datasets import load_from_disk

    try:
        data = load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001
        first = (str(exc).splitlines() or [""])[0]
        raise MembenchError(f"{path}: not a readable save_to_disk folder ({type(exc).__name__}: {first})", _REFETCH) from None
    if hasattr(data, "keys"):  # DatasetDict
        if split is None or split not in data:
            raise MembenchError(
                f"{path}: DatasetDict has no split {split!r} (it has: {', '.join(data.keys())})",
                "point --from-dir at the folder holding the split",
            )
        data = data[split]
    frame = data.to_pandas()
    frame["_line"] = None
    return frame


def find_table(root: Path, names: list[str], split: str | None = None) -> tuple[Path, pd.DataFrame]:
    """Find and read the file holding a split under ``root``.

    Looked for, in order: a ``save_to_disk`` folder named after the split (also the split's
    folder inside a saved DatasetDict); ``root`` itself as a DatasetDict holding ``split``; files ``<name>.<ext>`` or sharded
    ``<name>-*.<ext>`` anywhere below ``root`` (the Hub's parquet layout), for each name.
    """
    root = Path(root)
    for name in names:  # a Dataset folder of its own (also a split folder inside a DatasetDict)
        folder = root / name
        if folder.is_dir() and (folder / "state.json").exists():
            return folder, read_saved_dataset(folder)
    if (root / "dataset_dict.json").exists() and split:
        return root, read_saved_dataset(root, split)
    for name in names:
        for ext in TABLE_EXTS:
            hits = sorted(root.rglob(f"{name}.{ext}")) or sorted(root.rglob(f"{name}-*.{ext}"))
            if hits:
                frames = [read_table(h) for h in hits]
                return hits[0], pd.concat(frames, ignore_index=True)
    raise MembenchError(
        f"no file for this split under {root} (looked for {', '.join(names)} as "
        f"{'/'.join(TABLE_EXTS)} files or save_to_disk folders)",
        "pass --from-dir pointing at the folder that holds it",
    )


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
