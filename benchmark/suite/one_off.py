"""One-off splits from a file (`membench run --file`), keyed by their content.

The split id is ``file/<content hash>`` (the hash ``materialize`` gives the split: its uids,
texts and labels after deduplication), not the file's name or bytes, so the same labelled
texts in another file, format or order are the same split: a second `run --file` finds its
token statistics cached (no forward pass) and its diagnostics saved. When a registered split
(shipped, or added with `suite add`) holds exactly this content, the run is that split's run:
its features, its diagnostics, its declared label validity, one record set rather than two.

Label validity: a file's labels are not membership ground truth for any target unless the
researcher says so with ``--valid-for TARGET`` (patterns allowed); the run goes ahead either way
and the record says which (``split.label_validity``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import MembenchError
from . import add_local_split, get_split, readers, sources
from .registry import splits
from .store import content_hash, is_materialized, make_uid, read_manifest, split_dir

PREFIX = "file/"


def file_content_hash(path: Path, *, text_field: str | None = None, label_field: str | None = None,
                      config: str | None = None) -> tuple[str, str, str]:
    """(content hash as the materialized split will have it, text field, label field) of a
    labelled file, without registering anything."""
    frame = sources.read_local_table(path, config)
    text_field = text_field or sources.default_text_field(frame, path)
    label_field = label_field or "label"
    members, nonmembers = readers.labelled_texts(frame, path, text_field, label_field)
    rows = pd.DataFrame([(t, 1) for t in members] + [(t, 0) for t in nonmembers], columns=["text", "label"])
    rows["uid"] = rows["text"].map(make_uid)
    rows = rows.drop_duplicates("uid")
    return content_hash(rows[["uid", "text"]], rows[["uid", "label"]]), text_field, label_field


def twin_of(digest: str) -> str | None:
    """A materialized registered split (not a one-off) whose content hash is ``digest``."""
    for spec in splits().values():
        if spec.id.startswith(PREFIX) or not is_materialized(spec.id):
            continue
        try:
            if read_manifest(split_dir(spec.id)).get("content_hash") == digest:
                return spec.id
        except MembenchError:
            continue
    return None


@dataclass
class OneOff:
    """What `run --file` runs on, and what it says about it."""

    split_id: str
    content_hash: str
    twin: bool  # the content is a registered split's: run as that split
    valid: bool  # the split's labels are membership ground truth for the target
    lines: list[str] = field(default_factory=list)


def file_split(path, target_id: str, *, text_field: str | None = None, label_field: str | None = None,
               valid_for=()) -> OneOff:
    """The split ``run --file PATH`` scores (registering ``file/<hash>`` when new)."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise MembenchError(f"--file {path} does not exist", "pass an existing labelled file")
    digest, text_field, label_field = file_content_hash(path, text_field=text_field, label_field=label_field)
    twin = twin_of(digest)
    if twin is not None:
        spec = get_split(twin)
        valid = spec.labels_valid_for(target_id)
        lines = [f"--file {path.name} holds exactly the texts and labels of {twin} (content hash {digest[:16]}): "
                 f"scored as {twin}, with its cached features, its diagnostics and its declared label validity"]
        if valid_for:
            lines.append(f"--valid-for is not used: {twin} declares its own valid targets "
                         f"({', '.join(spec.valid_targets) or 'none'})")
        return OneOff(twin, digest, True, valid, lines + _validity_lines(twin, target_id, valid, declared=True))
    split_id = PREFIX + digest[:16]
    wanted = sorted(set(valid_for))
    existing = splits().get(split_id)
    if not (existing is not None and is_materialized(split_id) and sorted(existing.valid_targets) == wanted
            and existing.fields.get("text") == text_field and existing.fields.get("label") == label_field):
        add_local_split(split_id, path, text_field=text_field, label_field=label_field, valid_for=wanted,
                        track="custom", replace=True,
                        description=f"One-off split from {path.name} (membench run --file), keyed by its content; "
                        f"labels declared membership for: {', '.join(wanted) or 'no target'}.")
        reused = ""
    else:
        reused = " (seen before: its cached features and saved diagnostics are reused)"
    valid = any(fnmatch.fnmatchcase(target_id, pat) for pat in wanted)
    lines = [f"--file {path.name} is the one-off split {split_id}, named by its content{reused}"]
    return OneOff(split_id, digest, False, valid, lines + _validity_lines(split_id, target_id, valid, declared=False))


def _validity_lines(split_id: str, target_id: str, valid: bool, *, declared: bool) -> list[str]:
    if valid:
        return [f"labels of {split_id} are declared membership ground truth for {target_id}"]
    fix = ("" if declared else f"; if the file's labels are exactly what {target_id} was trained on, pass "
           f"--valid-for {target_id}")
    return [f"label validity: INVALID pair - the labels of {split_id} are not declared membership ground truth "
            f"for {target_id}, so these AUCs need not measure membership; the records say so "
            f"(split.label_validity.valid = false){fix}"]
