"""``RunSpec``: everything that decides one evaluation, frozen, built once by whoever asks.

The command line (`membench run`), the grid's jobs, the demo and the submission path
(`membench validate`, `membench evaluate`, the worker) each build one ``RunSpec`` with
``RunSpec.build`` and hand it to ``evaluate.run``. ``build`` checks every name and number
before anything heavy runs (one line each: an unknown split, target, reference, scorer
parameter or calibration subset; a missing pool file; a device this machine lacks) and
resolves the defaults: the scorer set (``settings.default_scorer_set``, with what it leaves
out in ``skipped``), the split's own pool, the target's reference model, the results folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import suite, targets
from ..attacks.fit_budget import FitBudget
from ..errors import MembenchError
from ..home import from_portable
from ..home import results_dir as default_results_dir
from .settings import default_scorer_set, make_scorers, scorer_settings


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One evaluation of scorers on a (target, split).

    ``scorers``: the built-in settings to score, (name, canonical params) each once (empty for
    a run of given handles only, e.g. a submission); ``skipped``: default scorers left out, each
    ``{"scorer", "reason", "fix"}``. ``reference``, ``pool``: resolved (the target's default
    reference; the split's ``pool.parquet``), None when there is none. ``blind_from``: the
    results folder holding the split's blind-baseline diagnostics (default ``results_dir``).
    ``calibration``: the calibration subset trainable scorers fit on (default: each scorer's
    own); every other record of the split is then also derived on its evaluated rest.
    ``limit``: score only the first ``limit`` rows (validation runs; never written).
    """

    target: str
    split: str
    results_dir: Path
    scorers: tuple[tuple[str, dict], ...] = ()
    skipped: tuple[dict, ...] = ()
    target_name: str | None = None
    reference: str | None = None
    pool: Path | None = None
    calibration: str | None = None
    fit_budget: FitBudget = field(default_factory=FitBudget)
    context_rule: str = targets.CONTEXT_RULE
    device: str = "cpu"
    dtype: str = "float32"
    batch_tokens: int = 16384
    allow_invalid: bool = False
    blind_from: Path | None = None
    verify: bool = False
    compile: bool = False
    progress: bool = True
    limit: int | None = None

    @property
    def diagnostics_from(self) -> Path:
        """Where the split's blind baselines are read: ``blind_from``, else ``results_dir``."""
        return Path(self.blind_from or self.results_dir)

    @classmethod
    def build(cls, target: str, split: str, scorers=None, *, results_dir: Path | str | None = None,
              reference: str | None = None, pool: Path | str | None = None, calibration: str | None = None,
              fit_budget: FitBudget | None = None, batch_tokens: int = 16384, device: str = "cpu",
              target_name: str | None = None, **options) -> "RunSpec":
        """Check and resolve a run (see the module doc). ``scorers``: names, ``name:key=value``
        specs or grids (``min_k:k=0.05,0.1``), or (name, params) pairs; None: the default set
        (every built-in feature-based scorer; those needing a pool only where there is one;
        ``reference`` when ``reference`` is given). ``options``: the other fields, as named."""
        sspec = suite.get_split(split)
        tspec = targets.get_target(target, name=target_name)
        if target_name and tspec.family != "local":
            raise MembenchError("--target-name names a local model directory", f"{target} is a registry target")
        if reference:
            targets.get_target(reference)
        if batch_tokens < 1:
            raise MembenchError(f"--batch-tokens must be positive, got {batch_tokens}",
                                "pass a token budget such as 16384")
        targets.check_device(device)
        if calibration is not None:
            suite.calibration.subset_spec(sspec, calibration)
        settings = scorer_settings(scorers) if scorers is not None else None
        materialized = suite.ensure(split)
        pool_path = Path(pool) if pool else default_pool(materialized)
        if pool_path is not None and not pool_path.exists():
            raise MembenchError(f"pool file {pool_path} does not exist", "pass an existing file to --pool")
        skipped: list[dict] = []
        if settings is None:
            names, skipped = default_scorer_set(pool_path is not None, reference)
            settings = scorer_settings(names)
        make_scorers(settings)  # every parameter value checked by its scorer now, not after the model loads
        return cls(target=target, split=split, scorers=tuple(settings), skipped=tuple(skipped),
                   results_dir=Path(results_dir) if results_dir is not None else default_results_dir(),
                   target_name=target_name, reference=reference or default_reference(tspec.id), pool=pool_path,
                   calibration=calibration, fit_budget=fit_budget or FitBudget(), batch_tokens=batch_tokens,
                   device=device, **options)


def load_pool(path) -> list[str]:
    """Texts of a declared pool file: parquet, jsonl, json or csv with a ``text`` column, or
    a .txt file with one text per blank-line-separated paragraph."""
    path = Path(path)
    if not path.exists():
        raise MembenchError(f"pool file {path} does not exist", "pass an existing file to --pool")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [t.strip() for t in path.read_text().split("\n\n") if t.strip()]
    readers = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True),
               ".json": pd.read_json, ".csv": pd.read_csv}
    if suffix not in readers:
        raise MembenchError(f"pool file {path} has an unknown format",
                            "use .parquet, .jsonl, .json, .csv (a `text` column) or .txt")
    table = readers[suffix](path)
    if "text" not in table.columns:
        raise MembenchError(f"pool file {path} has no `text` column", "name the text column `text`")
    return [str(t) for t in table["text"].dropna()]


def default_pool(split) -> Path | None:
    """The pool a split declares: ``pool.parquet`` beside it (the demo split has one)."""
    path = Path(split.path) / "pool.parquet"
    return path if path.exists() else None


def default_reference(target_id: str) -> str | None:
    """The demo target's reference model; for a fine-tuned target (``ft/<recipe>``), its base."""
    if target_id == "demo/neox-tiny":
        return targets.DEMO_REFERENCE
    base = (targets.targets().get(target_id).extra.get("base") or {}) if target_id in targets.targets() else {}
    if base.get("id") in targets.targets():
        return base["id"]
    return from_portable(base["path"]) if base.get("path") else None
