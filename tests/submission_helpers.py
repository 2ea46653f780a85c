"""A submission folder written for a test: ``scorer.py`` and ``submission.yaml`` from text."""

from __future__ import annotations

from pathlib import Path


def write_submission(root: Path, name: str, scorer: str, yaml: str) -> Path:
    folder = Path(root) / name
    folder.mkdir()
    (folder / "scorer.py").write_text(scorer)
    (folder / "submission.yaml").write_text(yaml)
    return folder
