"""``hf_dataset``: a Hub dataset split with a text and a label column (WikiMIA, WikiMIA-24),
or a local copy of it as jsonl / json / csv / parquet / ``save_to_disk``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .. import readers
from .hub import HubSource
from .parts import Parts, file_hashes


class HFDatasetSource(HubSource):
    kind: Literal["hf_dataset"]
    split: str
    local_names: list[str] = []  # other file names the split may have in a local copy

    def read(self, spec, files) -> Parts:
        src, fields = spec.source, spec.fields
        names = [src["split"], *src.get("local_names", [])]
        root = files.folder([f"*{src['split']}*", "*dataset_dict.json", "*dataset_info.json", "*state.json"])
        path, frame = readers.find_table(root, names, split=src["split"])
        members, nonmembers = readers.labelled_texts(frame, path, fields["text"], fields["label"],
                                                     fields.get("member_value", 1))
        shown = str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else str(path)
        source = {
            **files.describe(),
            "repo": src["repo"],
            "split": src["split"],
            "path": shown,
            "files": file_hashes({shown: path}),
        }
        return Parts(members, nonmembers, source)
