"""Validate and evaluate a submission: the sandbox on one side, labels and metrics on the other.

Both start from a private snapshot of the folder (``folder.snapshot``: no link followed), so
the metadata checked, the code hashed and the code run are the same bytes.

``validate`` checks, in order, stopping at the first failure: the metadata schema and the
name (reserved names of built-in attacks and blind baselines are refused); import inside the
sandbox and a run on a small slice of a split; declared capabilities against the class's
``requires``; output length, type and finiteness; determinism (a second run in a fresh
sandbox gives bit-identical scores); and declared against used capabilities. ``evaluate``
runs the scorer in the sandbox on a whole split, checks its output, and only then reads
labels, computes metrics and writes the result (owned by ``owner``).

A submission that declares ``fit`` fits, inside the same jail, on a calibration subset of the
split (``calibration``, default ``DEFAULT_CALIBRATION``; for ``validate``, half of its slice):
the subset's rows and their labels are the only labels that cross into the sandbox, the rest
is what it scores, and everything fit does with the model counts against ``fit_budget``. Its
record names the subset (``evaluation_subset``, ``fit``), like a built-in trainable scorer's.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MembenchError
from ..hashing import sha256_files
from . import metadata
from .access import CapabilityServer
from .folder import snapshot
from .jail import Limits
from .queue import MAINTAINERS
from .sandbox import SandboxError, check_scores, run_scorer

VALIDATE_N = 64
NO_TARGET = "none"
DEFAULT_CALIBRATION = "cal10"


@dataclass
class Prepared:
    """Everything one sandbox run needs, and what the record says about the target."""

    uids: list
    texts: list
    features: object | None
    access: CapabilityServer | None
    target_block: dict
    split: object = None
    validity: object = None  # the split/target pair's label validity (None without a target)
    groups: list | None = None  # ``groups`` capability: the group of every row
    group_rows: tuple | None = None  # (rows table, which rows, forward tokens of their statistics)


def code_hash(path: Path) -> str:
    """SHA-256 over the folder's files (a snapshot: regular files only, no links)."""
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [Path(root) / n for n in sorted(names)]
    return sha256_files(files)


def _head(stats, n: int):
    """The statistics of the first ``n`` samples, every array that evaluate sends included."""
    return stats.take(np.arange(n))


def prepare(sub, split_id: str, target_id: str, *, n: int | None = None, device="cpu", dtype="float32",
            batch_tokens: int = 16384, allow_invalid: bool = False, progress: bool = False) -> Prepared:
    """Load the split (and the target, only when the submission declares model access)."""
    from .. import features, suite, targets
    from ..runner import check_validity, target_block

    spec = suite.get_split(split_id)
    caps = set(sub.capabilities)
    split = suite.ensure(split_id)
    samples = split.samples if n is None else split.samples.iloc[:n]
    uids, texts = samples["uid"].tolist(), samples["text"].tolist()
    if not caps:  # every served capability needs the target (fit and groups are refused by load)
        block = {"id": NO_TARGET, "note": "text-only submission: no model access"}
        return Prepared(uids, texts, None, None, block, split)
    tspec = targets.get_target(target_id)
    validity = check_validity(spec, tspec.id, allow_invalid)
    if tspec.family == "demo":
        targets.ensure_demo_target(progress=progress, target_id=tspec.id)
    loaded = targets.load_target(target_id, device=device, dtype=dtype)
    stats = full = None
    if "features" in caps:
        stats = full = features.get_features(loaded, split, batch_tokens=batch_tokens, progress=progress)
        if n is not None:
            stats = _head(stats, len(uids))
    groups = group_rows = None
    if "groups" in caps:  # the rows a group scorer sees (attacker-held where the split has them)
        from .. import grouping

        if "fit" in caps:
            raise MembenchError("a submission declaring both 'fit' and 'groups' is not served",
                                "declare one of them")
        table, which, stats, tokens = grouping.prepare_rows(split, target=loaded if "features" in caps else None,
                                                            stats=full, batch_tokens=batch_tokens, progress=progress)
        if n is not None:
            table = table.iloc[:n]
            stats = None if stats is None else _head(stats, len(table))
        uids, texts, groups = table["uid"].tolist(), table["text"].tolist(), table["group"].tolist()
        group_rows = (table, which, tokens)
    access = None
    if caps - {"features"}:
        from ..attacks import InProcessAccess

        reference = None
        if "reference" in caps:
            reference = targets.load_target(sub.meta["reference_models"][0], device=device, dtype=dtype)
        access = CapabilityServer(InProcessAccess(
            loaded, granted=caps, reference=reference, split=split if n is None else None,
            batch_tokens=batch_tokens))
    return Prepared(uids, texts, stats, access, target_block(loaded, dtype), split, validity, groups, group_rows)


def split_for_fit(prep: Prepared, calibration, rest, labels, budget=None, name: str = "fit"):
    """(the evaluated rest as a ``Prepared``, the ``FitRequest`` of the calibration rows):
    ``calibration`` and ``rest`` are uids of ``prep``; only the calibration rows' labels are
    taken from ``labels`` (a Series by uid)."""
    from ..attacks import FitBudget, FitMeter, ScoringInput, take_rows
    from ..suite.calibration import positions
    from .sandbox import FitRequest

    full = ScoringInput(uids=prep.uids, texts=prep.texts, features=prep.features)
    cal = take_rows(full, positions(prep.uids, calibration))
    kept = take_rows(full, positions(prep.uids, rest))
    request = FitRequest(uids=cal.uids, texts=cal.texts, features=cal.features,
                         labels=labels.reindex(cal.uids).to_numpy(), meter=FitMeter(budget or FitBudget(), name))
    rest_prep = Prepared(kept.uids, kept.texts, kept.features, prep.access, prep.target_block, prep.split, prep.validity)
    return rest_prep, request


def _run(sub, prep: Prepared, log_path, limits, allow_unsandboxed, fit=None):
    run = _run_scorer(sub, prep, log_path, limits, allow_unsandboxed, fit)
    if fit is not None and "fit" not in run.used:
        run.used.append("fit")  # served by the protocol itself, not by a capability call
    if prep.groups is not None and "groups" not in run.used:
        run.used.append("groups")  # the same: the group ids come with the inputs
    return run


def _run_scorer(sub, prep: Prepared, log_path, limits, allow_unsandboxed, fit):
    return run_scorer(
        sub.path,
        uids=prep.uids,
        texts=prep.texts,
        features=prep.features,
        params=sub.params,
        class_name=sub.class_name,
        declared=sub.capabilities,
        access=prep.access,
        limits=limits,
        log_path=log_path,
        allow_unsandboxed=allow_unsandboxed,
        fit=fit,
        groups=prep.groups,
    )


def _check_loaded(sub, run) -> None:
    requires = set(run.loaded.get("requires") or ())
    declared = set(sub.capabilities)
    if requires != declared:
        raise SandboxError(
            f"submission.yaml declares capabilities {sorted(declared)} but {run.loaded.get('class')}.requires "
            f"is {sorted(requires)}",
            "make the two lists the same",
            kind="capabilities",
        )


def _check_used(sub, run) -> list[str]:
    if run.refused:
        names = ", ".join(sorted(set(run.refused)))
        raise SandboxError(
            f"the scorer called capabilities it did not declare: {names}",
            f"add {names} to `requires` in scorer.py and to `capabilities` in submission.yaml",
            kind="capabilities",
        )
    unused = [c for c in sub.capabilities if c not in ("features",) and c not in run.used]
    return [f"declared capability '{c}' was never used" for c in unused]


def capabilities_used(declared, used) -> list[str]:
    """What a run used: ``features`` when declared (they are sent whether read or not), then
    every capability it called."""
    return (["features"] if "features" in declared else []) + [c for c in used if c != "features"]


def describe_usage(declared, used, usage: dict | None) -> str:
    """One wording for `validate` and `evaluate`: the capabilities used and the metered model
    usage, e.g. ``capabilities used: features, logprobs; metered: target_forward_tokens=1234``."""
    caps = capabilities_used(declared, used)
    metered = {k: v for k, v in (usage or {}).items() if v and k != "calls"}
    calls = (usage or {}).get("calls") or {}
    text = "capabilities used: " + (", ".join(caps) if caps else "none (text only)")
    if calls:
        text += "; calls: " + ", ".join(f"{m} x{n}" for m, n in sorted(calls.items()))
    if metered:
        text += "; metered: " + ", ".join(f"{k}={v}" for k, v in sorted(metered.items()))
    return text


def validate(path, *, split_id: str, target_id: str, n: int = VALIDATE_N, log_path: Path,
             limits: Limits = Limits(), allow_unsandboxed: bool = False, device="cpu",
             dtype="float32", allow_invalid: bool = False, progress: bool = False) -> dict:
    """Run every check; return a report ``{"ok", "checks": [...], "error", "warnings"}``."""
    checks: list[dict] = []
    report = {"path": str(path), "split": split_id, "target": target_id, "n": n, "checks": checks,
              "warnings": [], "ok": False, "error": None}

    def passed(name, detail=""):
        checks.append({"check": name, "ok": True, "detail": detail})

    stage = "copy of the folder"
    try:
        with snapshot(path) as snap:
            stage = "metadata schema and name"
            sub = metadata.load(snap)
            report["submission"] = sub.meta
            passed(stage, f"{sub.name} v{sub.version}; capabilities: {', '.join(sub.capabilities) or 'none'}")
            stage = "import and run in the sandbox"
            prep = prepare(sub, split_id, target_id, n=n, device=device, dtype=dtype, allow_invalid=allow_invalid)
            fit = None
            if "fit" in sub.capabilities:  # fit on half of the slice, score the other half
                from ..suite.calibration import SubsetSpec, assign

                labels = prep.split.labels()
                cal, rest, _ = assign(prep.uids, prep.texts, labels.reindex(prep.uids).to_numpy(),
                                      SubsetSpec("validate", 0.5, seed=0))
                prep, fit = split_for_fit(prep, cal, rest, labels, name=sub.name)
            first = _run(sub, prep, log_path, limits, allow_unsandboxed, fit)
            passed(stage, f"{first.loaded.get('class')} on {len(prep.uids)} samples of {split_id} in {first.seconds:.2f} s"
                   + ("" if first.sandboxed else " (NOT FULLY JAILED)"))
            stage = "declared capabilities match requires"
            _check_loaded(sub, first)
            passed(stage)
            stage = "output length, type and finiteness"
            n_scored = prep.features.n_scored() if prep.features is not None else None
            scores1 = _checked(sub, prep, first.scores, n_scored)
            passed(stage, f"{len(scores1)} finite floats" + (" (one per group)" if prep.groups is not None else ""))
            stage = "determinism"
            if fit is not None:
                fit.meter = type(fit.meter)(fit.meter.budget, sub.name)
            second = _run(sub, prep, log_path, limits, allow_unsandboxed, fit)
            scores2 = _checked(sub, prep, second.scores, n_scored)
            if not np.array_equal(scores1, scores2, equal_nan=True):
                diff = int((scores1 != scores2).sum())
                raise SandboxError(
                    f"two runs gave different scores for {diff} of {len(scores1)} samples",
                    "seed every random choice (and do not depend on time, hash order or the process)",
                    kind="determinism",
                )
            passed(stage, "two runs in fresh sandboxes, bit-identical scores")
            stage = "declared against used capabilities"
            report["warnings"] = _check_used(sub, first)
            report["usage"] = describe_usage(sub.capabilities, first.used, first.usage)
            passed(stage, report["usage"])
            report["ok"] = True
    except MembenchError as exc:
        checks.append({"check": stage, "ok": False, "detail": str(exc)})
        report["error"] = str(exc)
        report["error_kind"] = getattr(exc, "kind", "input")
    return report


def _checked(sub, prep: Prepared, scores, n_scored) -> np.ndarray:
    """The output check: one finite float per sample, or (``groups``) one per group."""
    if prep.groups is None:
        return check_scores(scores, len(prep.uids), n_scored)
    from ..api import group_scores

    return group_scores(scores, sorted(set(prep.groups)), len(prep.uids), sub.name)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def evaluate(path, *, split_id: str, target_id: str, results_dir: Path, log_path: Path,
             limits: Limits = Limits(), allow_unsandboxed: bool = False, device="cpu", dtype="float32",
             batch_tokens: int = 16384, allow_invalid: bool = False, progress: bool = False,
             blind_from: Path | None = None, owner: str = MAINTAINERS, calibration: str | None = None,
             fit_budget=None) -> dict:
    """Score the whole split in the sandbox; write and return the result record.

    A submission declaring ``fit`` fits on calibration subset ``calibration`` (default
    ``DEFAULT_CALIBRATION``) within ``fit_budget`` and is scored on its evaluated rest only.

    ``blind_from`` is the results folder holding the split's blind-baseline diagnostics (for
    the AUC in excess of blind); default ``results_dir``. ``owner``: who the record belongs to
    (a token's submitter name; the maintainers for the operator's own runs). Raises
    ``MembenchError`` (a ``SandboxError`` for scorer faults) and writes nothing then.
    """
    from .. import results, runner
    from ..runner import _metrics_block, _split_block

    with snapshot(path) as snap:
        sub = metadata.load(snap)
        prep = prepare(sub, split_id, target_id, device=device, dtype=dtype, batch_tokens=batch_tokens,
                       allow_invalid=allow_invalid, progress=progress)
        fit = subset = None
        if "fit" in sub.capabilities:
            from .. import suite

            subset = suite.calibration.select(prep.split, calibration or DEFAULT_CALIBRATION)
            prep, fit = split_for_fit(prep, subset.calibration, subset.rest, prep.split.labels(), fit_budget, sub.name)
        elif calibration is not None:
            raise MembenchError(f"--calibration is for submissions that declare 'fit'; {sub.name} does not",
                                "drop --calibration (`membench calibration derive` puts any record on a subset's rest)")
        run = _run(sub, prep, log_path, limits, allow_unsandboxed, fit)
        code = code_hash(snap)
    _check_loaded(sub, run)
    n_scored = prep.features.n_scored() if prep.features is not None else None
    scores = _checked(sub, prep, run.scores, n_scored)
    _check_used(sub, run)
    # Only now, with a checked score array in hand, do labels come into play.
    row_ids, extra = prep.uids, {}
    if prep.groups is not None:  # one score per group: group labels, figures over groups
        from .. import grouping, metrics

        table, which, tokens = prep.group_rows
        outcome = grouping.outcome(prep.split, table, which, run.scores, sub.name, tokens)
        scores, row_ids = outcome.scores, outcome.group_ids
        summary, counts = metrics.summarize_groups(outcome.labels, scores), grouping.counts_block(outcome)
        extra = {"kind": "group", "groups": outcome.block}
    else:
        labels = prep.split.labels().reindex(prep.uids).to_numpy()
        too_short = (n_scored == 0) if n_scored is not None else None
        blind = runner.best_blind_auc(Path(blind_from or results_dir), split_id)
        if subset is not None:
            blind = results.rest_blind_auc(Path(blind_from or results_dir), prep.split, subset)
        summary, counts = _metrics_block(labels, scores, too_short, blind)
    record = {
        "split": _split_block(prep.split, prep.validity),
        "target": prep.target_block,
        "scorer": {
            "name": sub.name,
            "version": sub.version,
            "params": sub.params,
            "requires": list(sub.capabilities),
            "code_sha256": code,
            "kind": "submission",
            "owner": owner,
        },
        "metrics": summary,
        "counts": counts,
        "provenance": {
            **results.environment(device),
            "created_at": _now(),
            "sandbox": {**run.jail, "seconds": round(run.seconds, 3)},
        },
        "submission": sub.meta,
        "usage": {**(run.usage or {}), "capabilities_used": capabilities_used(sub.capabilities, run.used)},
        **extra,
    }
    if subset is not None:
        record["evaluation_subset"] = subset.block()
        record["fit"] = {"subset": subset.name, "n_calibration": len(fit.uids),
                         "calibration_members": int(np.sum(fit.labels)),
                         "calibration_nonmembers": int(len(fit.labels) - np.sum(fit.labels)),
                         "budget": fit.meter.budget.as_dict(), "usage": fit.meter.usage()}
    columns = {}
    if prep.groups is None and prep.features is not None:  # per-sample truncation flags, as built-ins have
        from ..features import truncation_counts

        truncated = prep.features.truncated()
        columns["truncated"] = truncated
        record["counts"].update(truncation_counts(truncated, prep.target_block.get("context_rule")))
    path = results.write(results_dir, record, row_ids, scores, columns=columns)
    from .. import suite

    derived = set() if prep.groups is not None else set(results.subsets_in(results_dir, split_id))
    for name in sorted({subset.name} if subset is not None else derived):
        if name in suite.calibration.subsets(prep.split.spec):  # every record of the split on the same rest
            results.derive_on_rest(results_dir, prep.split, subset or suite.calibration.select(prep.split, name),
                                   only=None if subset is not None else [path])
    return record
