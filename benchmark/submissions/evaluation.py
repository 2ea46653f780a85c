"""Validate and evaluate a submission: what is specific to submitted code, around the one evaluator.

Both start from a private snapshot of the folder (``folder.snapshot``: no link followed), so
the metadata checked, the code hashed and the code run are the same bytes, and both run the
submission through the evaluator (``benchmark.evaluate``) as a ``SandboxedHandle``: the rows
it scores, the calibration rows a trainable one fits on, the group rows, the record, the
derivation on a calibration subset's rest are the evaluator's, as for a built-in scorer.

``validate`` checks, in order, stopping at the first failure: the metadata schema and the
name (reserved names of built-in attacks and blind baselines are refused); import inside the
sandbox and a run on the first ``n`` rows of a split; declared capabilities against the
class's ``requires``; output length, type and finiteness; determinism (a second run in a
fresh sandbox gives bit-identical scores); and declared against used capabilities. It writes
nothing. ``evaluate`` runs the scorer in the sandbox on the whole split and writes its record
(owned by ``owner``) through the evaluator; a fault writes nothing.

A submission that declares ``fit`` fits, inside the same jail, on a calibration subset of the
split (``spec.calibration``, default ``DEFAULT_CALIBRATION``; for ``validate``, half of its
slice): the subset's rows and their labels are the only labels that cross into the sandbox,
the rest is what it scores, and everything fit does with the model counts against the run's
fit budget. Its record names the subset (``evaluation_subset``, ``fit``), like a built-in
trainable scorer's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import evaluate as evaluator
from .. import suite, targets
from ..errors import MembenchError
from ..evaluate import RunSpec
from . import metadata
from .folder import snapshot
from .jail import Limits
from .queue import MAINTAINERS
from .sandboxed import RUN, SandboxedHandle, check_used, code_hash, describe_usage
from .sandbox import SandboxError

VALIDATE_N = 64
VALIDATE_SUBSET = suite.calibration.SubsetSpec("validate", 0.5, seed=0)


def submission_spec(spec: RunSpec, sub) -> RunSpec:
    """``spec`` for ``sub``: no built-in scorer; its declared reference model, if any. A demo
    target it uses is built first (reused when present)."""
    reference = (sub.meta.get("reference_models") or [None])[0] if "reference" in sub.capabilities else None
    if sub.capabilities:
        tspec = targets.get_target(spec.target)
        if tspec.family == "demo":
            targets.ensure_demo_target(progress=spec.progress, target_id=tspec.id)
    return dataclasses.replace(spec, scorers=(), skipped=(), reference=reference)


def _validate_subset(plan) -> suite.calibration.Subset:
    """Half of the validation slice calibrates a trainable submission, the other half is scored."""
    uids = [plan.uids[i] for i in plan.rows]
    labels = plan.labels()[plan.rows]
    cal, rest, counts = suite.calibration.assign(uids, [plan.texts[i] for i in plan.rows], labels, VALIDATE_SUBSET)
    return suite.calibration.Subset(spec=VALIDATE_SUBSET, split_id=plan.split.id, content_hash=plan.split.content_hash,
                                    calibration=tuple(cal), rest=tuple(rest), counts=counts)


def _score(plan, handle, subset):
    if subset is not None:
        return evaluator.score_fit(plan, handle, subset)
    if handle.scores_groups:
        return evaluator.score_groups(plan, handle)
    return evaluator.score_plain(plan, handle)


def validate(path, spec: RunSpec, *, n: int = VALIDATE_N, log_path: Path, limits: Limits = Limits(),
             allow_unsandboxed: bool = False) -> dict:
    """Run every check on the first ``n`` rows of ``spec.split``; return a report ``{"ok",
    "checks": [...], "error", "warnings"}``."""
    checks: list[dict] = []
    report = {"path": str(path), "split": spec.split, "target": spec.target, "n": n, "checks": checks,
              "warnings": [], "ok": False, "error": None}

    def passed(name, detail=""):
        checks.append({"check": name, "ok": True, "detail": detail})

    stage, handle = "copy of the folder", None
    try:
        with snapshot(path) as snap:
            stage = "metadata schema and name"
            sub = metadata.load(snap)
            report["submission"] = sub.meta
            passed(stage, f"{sub.name} v{sub.version}; capabilities: {', '.join(sub.capabilities) or 'none'}")
            stage = RUN
            handle = SandboxedHandle(sub, code_hash(snap), log_path=log_path, limits=limits,
                                     allow_unsandboxed=allow_unsandboxed)
            plan = evaluator.load(dataclasses.replace(submission_spec(spec, sub), limit=n), [handle])
            subset = _validate_subset(plan) if handle.fits else None  # fit on half of the slice, score the rest
            first = _score(plan, handle, subset)
            run = handle.last
            handle = None  # the first run's checks passed: later failures are named below
            passed(RUN, f"{run.loaded.get('class')} on {len(plan.rows)} samples of {spec.split} in "
                   f"{run.seconds:.2f} s" + ("" if run.sandboxed else " (NOT FULLY JAILED)"))
            passed("declared capabilities match requires")
            stage = "output length, type and finiteness"
            passed(stage, f"{len(first.scores)} finite floats" + (" (one per group)" if first.groups else ""))
            stage = "determinism"
            second = _score(plan, SandboxedHandle(sub, "", log_path=log_path, limits=limits,
                                                  allow_unsandboxed=allow_unsandboxed), subset)
            if not np.array_equal(first.scores, second.scores, equal_nan=True):
                diff = int((first.scores != second.scores).sum())
                raise SandboxError(
                    f"two runs gave different scores for {diff} of {len(first.scores)} samples",
                    "seed every random choice (and do not depend on time, hash order or the process)",
                    kind="determinism",
                )
            passed(stage, "two runs in fresh sandboxes, bit-identical scores")
            stage = "declared against used capabilities"
            report["warnings"] = check_used(sub, run)
            report["usage"] = describe_usage(sub.capabilities, run.used, run.usage)
            passed(stage, report["usage"])
            report["ok"] = True
    except MembenchError as exc:
        if handle is not None:  # failed in the first run: at the stage the run got to
            stage = handle.stage
        checks.append({"check": stage, "ok": False, "detail": str(exc)})
        report["error"] = str(exc)
        report["error_kind"] = getattr(exc, "kind", "input")
    return report


def evaluate(path, spec: RunSpec, *, log_path: Path, limits: Limits = Limits(), allow_unsandboxed: bool = False,
             owner: str = MAINTAINERS) -> dict:
    """Score the whole of ``spec.split`` with the submission in the sandbox; write and return
    its record (as written). A submission declaring ``fit`` fits on calibration subset
    ``spec.calibration`` (default ``DEFAULT_CALIBRATION``) within ``spec.fit_budget`` and is
    scored on its evaluated rest only. ``spec.blind_from``: the results folder holding the
    split's blind-baseline diagnostics (for the AUC in excess of blind). ``owner``: who the
    record belongs to (a token's submitter name; the maintainers for the operator's own runs).
    Raises ``MembenchError`` (a ``SandboxError`` for scorer faults) and writes nothing then."""
    with snapshot(path) as snap:
        sub = metadata.load(snap)
        if spec.calibration is not None and "fit" not in sub.capabilities:
            raise MembenchError(f"--calibration is for submissions that declare 'fit'; {sub.name} does not",
                                "drop --calibration (`membench calibration derive` puts any record on a subset's rest)")
        handle = SandboxedHandle(sub, code_hash(snap), log_path=log_path, limits=limits,
                                 allow_unsandboxed=allow_unsandboxed, owner=owner)
        (record,) = evaluator.run(submission_spec(spec, sub), [handle]).records
    return record
