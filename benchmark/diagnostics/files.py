"""Labelled texts from any local file: jsonl/json, csv, parquet, a ``save_to_disk`` folder
(Dataset or DatasetDict, choose with ``config``), or a folder holding ``member/`` and
``nonmember/`` folders of .txt files.

Every problem is one MembenchError naming the file and the fix: a missing field, an
unreadable or non-UTF-8 file, empty texts, labels other than 0/1, one class only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MembenchError
from ..hashing import sha256_file

TEXT_FIELDS = ("text", "input")
LABEL_FIELDS = ("label",)
CLASS_DIRS = ("member", "nonmember")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MembenchError(
            f"{path}: invalid UTF-8 at byte {exc.start} (line {line})",
            "re-encode the file as UTF-8",
        ) from None


def _read_jsonl(path: Path) -> pd.DataFrame:
    text = _decode(path)
    stripped = text.lstrip()
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            return pd.DataFrame(json.loads(text))
        except (json.JSONDecodeError, ValueError) as exc:
            raise MembenchError(f"{path}: not valid JSON ({exc})", "fix the file") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MembenchError(f"{path}: line {n} is not valid JSON ({exc.msg})",
                                "write one JSON object per line") from None
        if not isinstance(row, dict):
            raise MembenchError(f"{path}: line {n} is not a JSON object",
                                "write one JSON object per line, e.g. {\"text\": ..., \"label\": 1}")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_class_dirs(path: Path) -> pd.DataFrame:
    rows = []
    for name, label in zip(CLASS_DIRS, (1, 0)):
        files = sorted((path / name).glob("*.txt"))
        rows += [{"text": _decode(f), "label": label} for f in files]
    return pd.DataFrame(rows, columns=["text", "label"])


def _read_saved(path: Path, config: str | None) -> pd.DataFrame:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise MembenchError(f"{path}: not a readable save_to_disk folder ({exc})",
                            "point at the folder save_to_disk wrote") from None
    if isinstance(data, datasets.DatasetDict):
        names = list(data)
        if config is None and len(names) == 1:
            config = names[0]
        if config not in data:
            raise MembenchError(
                f"{path}: a DatasetDict with configs {', '.join(names)}; "
                + ("choose one" if config is None else f"no config {config!r}"),
                f"pass --config NAME (or the folder {path}/<NAME>)",
            )
        data = data[config]
    return data.to_pandas()


def read_table(path: Path, config: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MembenchError(f"{path}: no such file or folder", "check the path")
    if path.is_dir():
        if all((path / d).is_dir() for d in CLASS_DIRS):
            return _read_class_dirs(path)
        if any((path / f).exists() for f in ("dataset_dict.json", "state.json", "dataset_info.json")):
            return _read_saved(path, config)
        raise MembenchError(
            f"{path}: a folder that is neither a save_to_disk dataset nor member/ + nonmember/ folders",
            "pass a jsonl, csv or parquet file, a save_to_disk folder, or a folder with member/ and nonmember/",
        )
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    if suffix == ".csv":
        try:
            return pd.read_csv(io.StringIO(_decode(path)), keep_default_na=False)
        except pd.errors.ParserError as exc:
            raise MembenchError(f"{path}: not valid CSV ({exc})", "fix the file") from None
    if suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for bad files
            raise MembenchError(f"{path}: not a readable parquet file ({exc})", "fix the file") from None
    raise MembenchError(f"{path}: unknown file type {suffix or '(none)'}",
                        "use .jsonl, .json, .csv or .parquet, or a folder")


def _pick(frame: pd.DataFrame, path: Path, wanted: str | None, defaults, what: str) -> str:
    if wanted is not None:
        if wanted not in frame.columns:
            raise MembenchError(f"{path}: no {what} field {wanted!r}; fields: {', '.join(map(str, frame.columns))}",
                                f"pass --{what}-field with one of those")
        return wanted
    for name in defaults:
        if name in frame.columns:
            return name
    raise MembenchError(
        f"{path}: no {what} field (looked for {', '.join(defaults)}); fields: {', '.join(map(str, frame.columns)) or '(none)'}",
        f"pass --{what}-field NAME",
    )


def _labels(values: pd.Series, path: Path, field: str) -> np.ndarray:
    def one(v):
        if isinstance(v, (bool, np.bool_)):
            return int(v)
        if isinstance(v, str) and v.strip() in ("0", "1"):
            return int(v.strip())
        if isinstance(v, (int, np.integer, float, np.floating)) and v in (0, 1):
            return int(v)
        return None

    out = [one(v) for v in values]
    bad = [i for i, v in enumerate(out) if v is None]
    if bad:
        raise MembenchError(
            f"{path}: label field {field!r} must be 0 or 1 (1 = member); row {bad[0]} holds {values.iloc[bad[0]]!r}"
            f" ({len(bad)} such rows)",
            "map labels to 1 = member, 0 = non-member",
        )
    return np.array(out, dtype=int)


def load_labelled(path, *, text_field=None, label_field=None, config=None, group_field=None):
    """(texts, labels, info) from a local file; ``info`` describes the source for provenance.
    With ``group_field``, ``info["groups"]`` holds each row's group (a string)."""
    path = Path(path)
    frame = read_table(path, config)
    if frame.empty:
        raise MembenchError(f"{path}: holds no rows", "pass a file with texts and labels")
    tf = _pick(frame, path, text_field, TEXT_FIELDS, "text")
    lf = _pick(frame, path, label_field, LABEL_FIELDS, "label")
    texts = frame[tf]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise MembenchError(f"{path}: text field {tf!r} is not a string in row {bad[0]} ({len(bad)} rows)",
                            "every row needs a text")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise MembenchError(f"{path}: {len(empty)} empty text(s) in field {tf!r} (first: row {empty[0]})",
                            "remove or fill the empty rows")
    labels = _labels(frame[lf], path, lf)
    counts = np.bincount(labels, minlength=2)
    if counts.min() == 0:
        only = "members" if counts[1] else "non-members"
        raise MembenchError(f"{path}: one class only ({len(labels)} {only}, no "
                            f"{'non-members' if counts[1] else 'members'})",
                            "a blind baseline needs members (label 1) and non-members (label 0)")
    info = {"kind": "file", "path": str(path.resolve()), "text_field": tf, "label_field": lf}
    if config:
        info["config"] = config
    if path.is_file():
        info["sha256"] = sha256_file(path)
    if group_field is not None:
        gf = _pick(frame, path, group_field, (), "group")
        missing = [i for i, g in enumerate(frame[gf]) if g is None or (isinstance(g, float) and g != g)
                   or not str(g).strip()]
        if missing:
            raise MembenchError(f"{path}: group field {gf!r} is empty in {len(missing)} row(s) (first: row {missing[0]})",
                                "give every row its group (user, author, book, repository)")
        info["group_field"] = gf
        info["groups"] = [str(g) for g in frame[gf]]  # taken out by the caller: not provenance
    return texts.tolist(), labels, info
