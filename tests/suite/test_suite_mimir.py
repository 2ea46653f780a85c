"""MIMIR: a local mirror in the exact Hub file layout, loaded through the Hub code path.

The mirror is written as the Hub stores iamgroot42/mimir (``cache_100_200_1000_512/train/
<config>_<subset>.jsonl`` and friends). It is read twice: with ``--from-dir`` (LocalFiles) and
as if from the Hub (HubFiles, with ``huggingface_hub.hf_hub_download`` answered from a fake Hub
cache snapshot), and both must give the same split, neighbours included.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from benchmark import suite
from benchmark.cli import main
from benchmark.errors import MembenchError
from benchmark.suite.sources import mimir_paths

COMMIT = "0123456789abcdef0123456789abcdef01234567"
N = 6


def _texts(kind: str, config: str, subset: str | None = None) -> list[str]:
    return [f"{config} {subset} {kind} passage {i}: " + " ".join(f"w{i}{j}" for j in range(12)) for i in range(N)]


def _neighbors(texts: list[str]) -> list[list[str]]:
    return [[f"{t} (neighbour {k})" for k in range(25)] for t in texts]


def write_mirror(root: Path, config: str, subset: str | None, *, neighbors: bool = True) -> Path:
    """Write one MIMIR config/sub-split in the Hub layout under ``root``; returns ``root``."""
    spec_source = {"cache": "cache_100_200_10000_512" if config == "full_pile" else "cache_100_200_1000_512",
                   "config": config, "subset": subset}
    paths = mimir_paths(spec_source)
    members, nonmembers = _texts("member", config, subset), _texts("nonmember", config, subset)
    content = {"members": members, "nonmembers": nonmembers}
    if neighbors:
        content["member_neighbors"] = _neighbors(members)
        content["nonmember_neighbors"] = _neighbors(nonmembers)
    for key, rows in content.items():
        file = root / paths[key]
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "hub-cache" / "datasets--iamgroot42--mimir" / "snapshots" / COMMIT
    write_mirror(root, "wikipedia_(en)", "ngram_13_0.8")
    write_mirror(root, "temporal_arxiv", "2020_08", neighbors=False)
    write_mirror(root, "temporal_arxiv", "2023_06", neighbors=False)
    write_mirror(root, "full_pile", None)
    return root


def test_mirror_layout_is_the_hub_layout(mirror):
    assert (mirror / "cache_100_200_1000_512/train/wikipedia_(en)_ngram_13_0.8.jsonl").is_file()
    assert (mirror / "cache_100_200_1000_512/test/wikipedia_(en)_ngram_13_0.8.jsonl").is_file()
    assert (mirror / "cache_100_200_1000_512/train_neighbors/"
            "wikipedia_(en)_ngram_13_0.8_neighbors_25_bert_in_place_swap.jsonl").is_file()
    assert (mirror / "cache_100_200_10000_512/test/full_pile.jsonl").is_file()
    assert (mirror / "cache_100_200_1000_512/test/temporal_arxiv_2023_06.jsonl").is_file()


def test_fetch_from_mirror_with_neighbours(home, mirror, capsys):
    assert main(["suite", "fetch", "mimir/wikipedia_en/ngram_13_0.8", "--from-dir", str(mirror), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["counts"] == {"total": 2 * N, "members": N, "nonmembers": N} and row["neighbors"]
    split = suite.load(suite.get_split("mimir/wikipedia_en/ngram_13_0.8"))
    neighbours = split.neighbors()
    assert len(neighbours) == 2 * N and all(len(v) == 25 for v in neighbours)
    text = split.samples.set_index("uid")["text"]
    for uid, nbs in neighbours.items():
        assert nbs[0] == f"{text[uid]} (neighbour 0)"
    assert list(split.samples.columns) == ["uid", "text"]  # neighbours live apart, no labels anywhere
    labels = split.labels()
    assert all(labels[u] == int(" member " in t) for u, t in text.items())
    assert split.manifest["source"]["origin"] == "local"
    assert "cache_100_200_1000_512/train/wikipedia_(en)_ngram_13_0.8.jsonl" in split.manifest["source"]["files"]
    assert suite.verify([split.spec])[0]["status"] == "ok"


def test_hub_code_path_gives_the_same_split(home, mirror, monkeypatch):
    """The Hub path (hf_hub_download at the pinned revision) and --from-dir differ only in
    where files come from: same rows, same neighbours, same hashes; the commit is recorded."""
    calls = []

    def fake_download(repo_id, filename, *, repo_type=None, revision=None, token=None, endpoint=None, **kw):
        calls.append((repo_id, filename, repo_type, revision))
        path = mirror / filename
        if not path.exists():
            req = httpx.Request("GET", f"https://huggingface.co/datasets/{repo_id}/resolve/{revision}/{filename}")
            from huggingface_hub.errors import RemoteEntryNotFoundError

            raise RemoteEntryNotFoundError("404 entry not found", response=httpx.Response(404, request=req))
        return str(path)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    for split_id in ("mimir/wikipedia_en/ngram_13_0.8", "mimir/full_pile"):
        via_hub = suite.fetch(split_id)
        assert via_hub.manifest["source"]["origin"] == "hub"
        assert via_hub.manifest["source"]["resolved_commit"] == COMMIT
        local = suite.fetch(split_id, mirror, force=True)
        assert local.content_hash == via_hub.content_hash
        assert local.manifest["neighbors_sha256"] == via_hub.manifest["neighbors_sha256"]
        assert local.manifest["source"]["files"] == via_hub.manifest["source"]["files"]
    assert ("iamgroot42/mimir", "cache_100_200_1000_512/train/wikipedia_(en)_ngram_13_0.8.jsonl", "dataset", "main") in calls
    # temporal splits have no neighbour files: a 404 there is not an error
    split = suite.fetch("mimir/temporal_arxiv/2020_08")
    assert not split.has_neighbors and split.manifest["counts"]["total"] == 2 * N


def test_temporal_arxiv_control_from_mirror(home, mirror):
    older, newer = _texts("nonmember", "temporal_arxiv", "2020_08"), _texts("nonmember", "temporal_arxiv", "2023_06")
    newer_file = mirror / "cache_100_200_1000_512/test/temporal_arxiv_2023_06.jsonl"
    with open(newer_file, "a") as fh:  # one text on both sides: dropped from the control, counted
        fh.write(json.dumps(older[0]) + "\n")
    with open(mirror / "cache_100_200_1000_512/train/temporal_arxiv_2023_06.jsonl", "a") as fh:
        fh.write(json.dumps("one more member to keep the files parallel") + "\n")
    suite.fetch("mimir/temporal_arxiv/2020_08", mirror)
    suite.fetch("mimir/temporal_arxiv/2023_06", mirror)
    ctrl = suite.ensure("control/temporal_arxiv/2020_08-vs-2023_06")  # offline: derived from parents
    assert ctrl.manifest["overlap_dropped"] == 1
    assert ctrl.manifest["counts"] == {"total": 2 * N - 1, "members": N - 1, "nonmembers": N}
    labels = ctrl.labels()
    text = ctrl.samples.set_index("uid")["text"]
    assert {text[u] for u in labels.index if labels[u] == 1} == set(older[1:])  # 1 = 2020-08 non-members
    assert {text[u] for u in labels.index if labels[u] == 0} == set(newer)
    assert ctrl.spec.track == "control" and ctrl.manifest["label_meaning"].startswith("NOT membership")


def test_gated_access_is_one_clear_line(home, monkeypatch, capsys):
    from huggingface_hub.errors import GatedRepoError

    def denied(repo_id, filename, **kw):
        req = httpx.Request("GET", f"https://huggingface.co/datasets/{repo_id}/resolve/main/{filename}")
        raise GatedRepoError("403 Client Error: cannot access gated repo", response=httpx.Response(403, request=req))

    monkeypatch.setattr("huggingface_hub.hf_hub_download", denied)
    assert main(["suite", "fetch", "mimir/arxiv/ngram_13_0.8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "gated dataset iamgroot42/mimir was denied" in err and "HF_TOKEN" in err and "--from-dir" in err


def test_malformed_mimir_files_name_file_and_line(home, tmp_path):
    root = write_mirror(tmp_path / "m1", "github", "ngram_7_0.2")
    member_file = root / "cache_100_200_1000_512/train/github_ngram_7_0.2.jsonl"
    lines = member_file.read_text().splitlines()
    lines[3] = '{"not": "a string"}'
    member_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(MembenchError, match=r"github_ngram_7_0\.2\.jsonl: line 4: expected a JSON string"):
        suite.fetch("mimir/github/ngram_7_0.2", root)

    root = write_mirror(tmp_path / "m2", "github", "ngram_7_0.2")
    nb_file = root / "cache_100_200_1000_512/test_neighbors/github_ngram_7_0.2_neighbors_25_bert_in_place_swap.jsonl"
    nb_file.write_text("".join(nb_file.read_text().splitlines(keepends=True)[:-1]))  # one line short
    with pytest.raises(MembenchError, match=r"neighbors_25_bert_in_place_swap\.jsonl has 5 lines but .* has 6"):
        suite.fetch("mimir/github/ngram_7_0.2", root)

    root = write_mirror(tmp_path / "m3", "github", "ngram_7_0.2")
    test_file = root / "cache_100_200_1000_512/test/github_ngram_7_0.2.jsonl"
    test_file.write_bytes(test_file.read_bytes()[:-40])  # truncated download
    with pytest.raises(MembenchError, match=r"test/github_ngram_7_0\.2\.jsonl: line 6: not valid JSON"):
        suite.fetch("mimir/github/ngram_7_0.2", root)

    (tmp_path / "m4").mkdir()
    with pytest.raises(MembenchError, match=r"train/github_ngram_7_0\.2\.jsonl not found.*Hub layout"):
        suite.fetch("mimir/github/ngram_7_0.2", tmp_path / "m4")
    assert not suite.is_materialized("mimir/github/ngram_7_0.2")
