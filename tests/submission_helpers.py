"""A submission folder written for a test: ``scorer.py`` and ``submission.yaml`` from text."""

from __future__ import annotations

from pathlib import Path


def write_submission(root: Path, name: str, scorer: str, yaml: str) -> Path:
    folder = Path(root) / name
    folder.mkdir()
    (folder / "scorer.py").write_text(scorer)
    (folder / "submission.yaml").write_text(yaml)
    return folder


def run_spec(split: str, target: str, results_dir: Path | None = None, **options):
    """The ``RunSpec`` a submission is validated or evaluated with (no built-in scorer)."""
    from benchmark.evaluate import RunSpec

    return RunSpec.build(target, split, scorers=(), results_dir=results_dir, progress=False, **options)
