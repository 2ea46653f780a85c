"""``mimir``: MIMIR's raw files on the Hub (``iamgroot42/mimir``), one config and sub-split.

MIMIR on the Hub is a script dataset that ``datasets>=4`` refuses to run, so its files are read
directly (``mimir_paths``): members and non-members as one JSON string per line, two parallel
lists, and their stored neighbours when the repository has them.
"""

from __future__ import annotations

from typing import Literal

from ...errors import MembenchError
from .. import readers
from .hub import HubSource
from .parts import Parts, file_hashes

NEIGHBOR_SUFFIX = "_neighbors_25_bert_in_place_swap"


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


class MimirSource(HubSource):
    kind: Literal["mimir"]
    config: str
    subset: str | None = None
    cache: str

    def read(self, spec, files) -> Parts:
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
            "files": {rel[k]: v for k, v in file_hashes(got).items()},
        }
        return Parts(members, nonmembers, source, neighbors)
