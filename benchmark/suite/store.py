"""Materialized splits on disk: normalization, manifests, loading and verification.

Every split has the same shape under ``MEMBENCH_HOME/suite/<split id>/``:

- ``samples.parquet``: ``uid`` (opaque), ``text``, optional metadata columns; sorted by uid,
  so row order says nothing about the label;
- ``labels.parquet``: ``uid``, ``label`` (1 = member); read only by the evaluator;
- ``neighbors.parquet`` (optional): ``uid``, ``neighbors`` (MIMIR's 25 stored neighbours);
- ``manifest.json``: source and revision, counts before and after deduplication, the SHA-256
  of every file, of the sorted uid list, and a content hash of (uid, text, label) rows that
  does not depend on the parquet writer.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import __version__
from ..errors import MembenchError
from ..hashing import sha256_file, sha256_json, sha256_text
from ..home import home
from .registry import SplitSpec

UID_PREFIX = "membench-uid-v1\x00"
DATA_FILES = ("samples.parquet", "labels.parquet")
NEIGHBORS_FILE = "neighbors.parquet"
VERIFIED_STAMP = "verified.json"


def make_uid(text: str) -> str:
    """Opaque, stable id of a text: the same text has the same uid on every machine."""
    return sha256_text(UID_PREFIX + text)[:20]


def split_dir(split_id: str) -> Path:
    """Where a split lives (not created: looking a split up leaves no empty folders)."""
    return home().joinpath("suite", *split_id.split("/"))


@dataclass
class Split:
    """A materialized split. ``labels`` is kept apart from ``samples`` on purpose."""

    spec: SplitSpec
    samples: pd.DataFrame
    manifest: dict
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    @property
    def has_neighbors(self) -> bool:
        return NEIGHBORS_FILE in self.manifest.get("files", {})

    def neighbors(self) -> pd.Series:
        """MIMIR's stored neighbours (a list of texts) indexed by uid; empty when the split
        has none. Neighbours carry no label information."""
        if not self.has_neighbors:
            return pd.Series(dtype=object)
        table = pd.read_parquet(self.path / NEIGHBORS_FILE)
        return table.set_index("uid")["neighbors"].map(list)

    def labels(self) -> pd.Series:
        """Labels indexed by uid. Evaluator use only: scorers never receive these."""
        table = pd.read_parquet(self.path / "labels.parquet")
        return table.set_index("uid")["label"].astype(int)


def content_hash(samples: pd.DataFrame, labels: pd.DataFrame) -> str:
    """Hash of the (uid, text, label) rows, and of each row's group when the split has users."""
    if "group" in samples.columns:
        rows = samples[["uid", "text", "group"]].merge(labels, on="uid").sort_values("uid")
        return sha256_json([[u, t, g, int(lab)] for u, t, g, lab in rows.itertuples(index=False)])
    rows = samples[["uid", "text"]].merge(labels, on="uid").sort_values("uid")
    return sha256_json([[u, t, int(lab)] for u, t, lab in rows.itertuples(index=False)])


def materialize(
    spec: SplitSpec,
    members,
    nonmembers,
    *,
    source: dict,
    extra_files=None,
    neighbors: dict | None = None,
    notes: dict | None = None,
    groups: dict | None = None,
) -> Split:
    """Normalize member and non-member texts into the on-disk split shape.

    Exact duplicate texts are dropped (one kept) and counted; a text appearing in both classes
    is an error, since its label would be ambiguous. ``extra_files`` maps file names to
    DataFrames stored beside the split (for example the demo's reference pool); ``neighbors``
    maps a text to its stored neighbour texts (MIMIR), kept in ``neighbors.parquet``.
    The split is written to a temporary folder and moved into place, so an interrupted fetch
    never leaves a half-written split behind. ``groups`` maps every text to its user (user-level
    splits): ``samples.parquet`` then has a ``group`` column, which enters the content hash.
    """
    rows = [(t, 1) for t in members] + [(t, 0) for t in nonmembers]
    before = {"total": len(rows), "members": len(members), "nonmembers": len(nonmembers)}
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame["uid"] = frame["text"].map(make_uid)
    conflicts = frame.groupby("uid")["label"].nunique()
    if (conflicts > 1).any():
        n = int((conflicts > 1).sum())
        raise MembenchError(
            f"split {spec.id}: {n} text(s) appear as both member and non-member",
            "fix the source so each text has one label",
        )
    frame = frame.drop_duplicates("uid").sort_values("uid").reset_index(drop=True)
    if groups is not None:
        frame["group"] = frame["text"].map(lambda t: str(groups[t]))
    samples = frame[["uid", "text"] + (["group"] if groups is not None else [])]
    labels = frame[["uid", "label"]].astype({"label": "int8"})
    final = split_dir(spec.id)
    out = final.with_name(final.name + ".partial")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    samples.to_parquet(out / "samples.parquet", index=False)
    labels.to_parquet(out / "labels.parquet", index=False)
    files = {name: sha256_file(out / name) for name in DATA_FILES}
    for name, table in (extra_files or {}).items():
        table.to_parquet(out / name, index=False)
        files[name] = sha256_file(out / name)
    after = {
        "total": len(frame),
        "members": int(labels["label"].sum()),
        "nonmembers": int((labels["label"] == 0).sum()),
    }
    manifest = {
        "split": spec.id,
        "family": spec.family,
        "track": spec.track,
        "domain": spec.domain,
        "label_meaning": spec.label_meaning,
        "source": source,
        "counts_before_dedup": before,
        "counts": after,
        "duplicates_dropped": before["total"] - after["total"],
        "fields": ["uid", "text"] + (["group"] if groups is not None else []),
    }
    if groups is not None:
        manifest["n_groups"] = int(samples["group"].nunique())
    if neighbors is not None:
        nb = pd.DataFrame({"uid": samples["uid"], "neighbors": [list(neighbors.get(t, [])) for t in samples["text"]]})
        nb.to_parquet(out / NEIGHBORS_FILE, index=False)
        files[NEIGHBORS_FILE] = sha256_file(out / NEIGHBORS_FILE)
        manifest["fields"].append("neighbors (neighbors.parquet)")
        manifest["neighbors_sha256"] = neighbors_hash(nb)
        manifest["neighbors_per_text"] = sorted({len(v) for v in nb["neighbors"]})
    manifest.update(notes or {})
    manifest.update(
        {
            "files": files,
            "uid_list_sha256": sha256_json(sorted(samples["uid"])),
            "content_hash": content_hash(samples, labels),
            "membench_version": __version__,
            "python": platform.python_version(),
        }
    )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    out.rename(final)
    return Split(spec=spec, samples=samples, manifest=manifest, path=final)


def neighbors_hash(table: pd.DataFrame) -> str:
    rows = table.sort_values("uid")
    return sha256_json([[u, list(n)] for u, n in zip(rows["uid"], rows["neighbors"])])


def is_materialized(split_id: str) -> bool:
    return (split_dir(split_id) / "manifest.json").exists()


def load(spec: SplitSpec) -> Split:
    path = split_dir(spec.id)
    if not (path / "manifest.json").exists():
        raise MembenchError(f"split {spec.id} is not materialized", spec.source_model.fetch_hint(spec))
    manifest = read_manifest(path)
    bad = verify_files(path, manifest)
    if bad:
        raise MembenchError(
            f"split {spec.id} is corrupt: file {bad[0]} does not match its manifest hash",
            spec.source_model.fetch_hint(spec, again=True),
        )
    samples = pd.read_parquet(path / "samples.parquet")
    return Split(spec=spec, samples=samples, manifest=manifest, path=path)


def read_manifest(path: Path) -> dict:
    file = path / "manifest.json"
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}: " if isinstance(exc, json.JSONDecodeError) else ""
        split_id = path.relative_to(home() / "suite").as_posix() if path.is_relative_to(home() / "suite") else "SPLIT"
        raise MembenchError(f"{file}: {where}not valid JSON", f"materialize the split again: "
                            f"membench suite fetch {split_id} --force") from None


def verify_files(path: Path, manifest: dict) -> list[str]:
    """Names of files whose SHA-256 differs from the manifest (missing files included)."""
    bad = []
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.exists() or sha256_file(file) != digest:
            bad.append(str(file))
    return bad

