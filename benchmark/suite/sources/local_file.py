"""``local_file``: a researcher's own labelled file as a split (``membench suite add``,
``membench run --file``): jsonl / json / csv / parquet, or a ``save_to_disk`` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from ...errors import MembenchError
from .. import readers
from .kind import SourceKind
from .parts import Parts, file_hashes

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


class LocalFileSource(SourceKind):
    kind: Literal["local_file"]
    path: str
    config: str | None = None  # the split of a save_to_disk DatasetDict
    sha256: str | None = None  # of the file when it was registered

    def offline(self) -> bool:
        return Path(self.path).exists()

    def route(self, spec, pins: dict) -> str:
        return "from its local file" if self.offline() else f"local file missing: {self.path}"

    def build(self, spec, from_dir=None, parent=None) -> Parts:
        fields = spec.fields
        path = Path(self.path)
        frame = read_local_table(path, self.config)
        members, nonmembers = readers.labelled_texts(frame, path, fields["text"], fields["label"],
                                                     fields.get("member_value", 1))
        source = {"origin": "local_file", "file": path.name, "config": self.config,
                  "files": file_hashes({path.name: path})}
        return Parts(members, nonmembers, source)
