"""A submission as the one evaluator runs it, in the jail: ``SandboxedHandle``, ``validate``, ``evaluate``.

It is the ``evaluate.ScorerHandle`` of submitted code: ``run`` hands the rows the evaluator
chose to ``sandbox.run_scorer`` (ids, texts, token statistics when ``features`` is declared,
the group of every row for ``groups``; for ``fit`` the calibration rows and their labels, the
only labels that cross the pipe), with the run's ``MeteredModelAccess`` behind a
``CapabilityServer`` when the submission declared model access. After the run it checks what
the class declared (``requires`` against ``submission.yaml``) and the calls the harness
refused; ``checked`` is the output check (one finite float per sample; NaN only for a text
with no scored token). Its record parts: the scorer block (kind ``submission``, the owner, the
hash of the folder's files), the sandbox in the provenance, the metadata and the usage.

Both start from a private snapshot of the folder (``folder.snapshot``: no link followed), so
the metadata checked, the code hashed and the code run are the same bytes, and both run the
submission through the evaluator (``benchmark.evaluate``) as a ``SandboxedHandle``: the rows
it scores, the calibration rows a trainable one fits on, the group rows, the record, the
derivation on a calibration subset's rest are the evaluator's, as for a built-in scorer.

``validate`` checks, in order, stopping at the first failure: the metadata schema and the
name (reserved names of built-in attacks and blind baselines are refused); import inside the
sandbox and a run on the first ``n`` rows of a split; declared capabilities against the
class's ``requires``; output length, type and finiteness; determinism (a second run in a
fresh sandbox gives bit-identical scores on the slice); and declared against used
capabilities. It writes nothing. ``evaluate`` runs the scorer in the sandbox on the whole
split, twice (``verify_determinism``: the evaluator refuses the record unless both runs agree
on everything scored), and writes its record (owned by ``owner``) through the evaluator; a
fault writes nothing.

A submission that declares ``fit`` fits, inside the same jail, on a calibration subset of the
split (``spec.calibration``, default ``DEFAULT_CALIBRATION``; ``validate`` takes rows of that
same subset, ``validation_subset``): the subset's rows and their labels are the only labels
that cross into the sandbox, the rest is what it scores, and everything fit does with the
model counts against the run's fit budget. Its record names the subset (``evaluation_subset``,
``fit``), like a built-in trainable scorer's.

On a private split (``private``) the handle keeps what the scorer says inside the harness: its
stdout and stderr are dropped (the job log holds the harness's lines only), a fault is reported
by its kind (``quiet``), and ``validate``'s report names nothing the run chose (no class name
the sandbox reported, no timing, no usage count).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .. import evaluate as evaluator
from .. import suite, targets
from ..errors import MembenchError
from ..evaluate import FitTask, RunSpec, ScorerHandle
from ..hashing import sha256_files
from . import metadata, owners
from .capability_server import CapabilityServer
from .folder import snapshot
from .jail import Limits
from .owners import MAINTAINERS
from .sandbox import FitRequest, RunResult, SandboxError, check_scores, run_scorer

DEFAULT_CALIBRATION = evaluator.PRIVATE_SUBSET  # the subset a trainable submission fits on; every private record is on its rest

# The stages of a sandboxed run, as `validate` reports them.
RUN = "import and run in the sandbox"
NAMED = "scorer class name matches submission.yaml"
LOADED = "declared capabilities match requires"
USED = "declared against used capabilities"
OUTPUT = "output length, type and finiteness"


def code_hash(path: Path) -> str:
    """SHA-256 over the folder's files (a snapshot: regular files only, no links)."""
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [Path(root) / n for n in sorted(names)]
    return sha256_files(files)


def check_loaded(sub, run: RunResult) -> None:
    """The scorer class's ``requires`` must be what ``submission.yaml`` declares."""
    requires = set(run.loaded.get("requires") or ())
    declared = set(sub.capabilities)
    if requires != declared:
        raise SandboxError(
            f"submission.yaml declares capabilities {sorted(declared)} but {run.loaded.get('class')}.requires "
            f"is {sorted(requires)}",
            "make the two lists the same",
            kind="capabilities",
        )


def check_used(sub, run: RunResult) -> list[str]:
    """Refuses a run that called capabilities it did not declare; warns of declared ones it
    never used."""
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


# Faults whose message the harness wrote alone (a limit, a signal, a missing jail): every other
# kind may quote the scorer (an exception's type and message, an import error, a bad message).
HARNESS_WORDED = frozenset({"memory", "cpu", "file_size", "killed", "crash", "timeout", "no_sandbox"})


def quiet(exc: SandboxError) -> SandboxError:
    """``exc`` as a private split may tell it: its kind and the harness's own words only (the
    scorer's exception text, class name or output could carry what it saw of the split)."""
    if exc.kind in HARNESS_WORDED:
        return exc
    return SandboxError(f"the scorer failed ({exc.kind}); on a private split its own messages and output are not "
                        "shown", "run `membench validate` on a public split (e.g. demo/pydoc) to see them",
                        kind=exc.kind)


class SandboxedHandle(ScorerHandle):
    """A submission (``metadata.Submission`` of a snapshot folder) run in the jail."""

    in_process = False
    default_calibration = DEFAULT_CALIBRATION

    def __init__(self, sub, code_sha256: str, *, log_path: Path, limits: Limits = Limits(),
                 allow_unsandboxed: bool = False, owner: str = MAINTAINERS, private: bool = False):
        if "fit" in sub.capabilities and "groups" in sub.capabilities:
            raise MembenchError("a submission declaring both 'fit' and 'groups' is not served", "declare one of them")
        self.sub = sub
        self.name = sub.name
        self.requires = tuple(sub.capabilities)
        self.code_sha256 = code_sha256
        self.log_path = Path(log_path)
        self.limits = limits
        self.allow_unsandboxed = allow_unsandboxed
        self.owner = owner
        self.private = private  # a private split: the scorer's output and messages stay in the harness
        self.last: RunResult | None = None  # the last run, as the sandbox reported it
        self.stage = RUN  # where the last run got to (validate names the failing check by it)

    def run(self, inputs, fit: FitTask | None = None):
        self.stage, self.last = RUN, None
        server = None
        if set(self.requires) - {"features"} and inputs.access is not None:
            server = CapabilityServer(inputs.access)
        request = None
        if fit is not None:
            request = FitRequest(uids=fit.inputs.uids, texts=fit.inputs.texts, features=fit.inputs.features,
                                 labels=np.asarray(fit.labels), meter=fit.meter)
        try:
            return self._run(inputs, server, request, fit is not None)
        except SandboxError as exc:
            raise quiet(exc) if self.private else exc

    def _run(self, inputs, server, request, fits: bool):
        run = run_scorer(self.sub.path, uids=inputs.uids, texts=inputs.texts, features=inputs.features,
                         params=self.sub.params, class_name=self.sub.class_name, declared=self.sub.capabilities,
                         access=server, limits=self.limits, log_path=self.log_path,
                         allow_unsandboxed=self.allow_unsandboxed, fit=request, groups=inputs.groups,
                         scorer_output=not self.private)
        for served, given in (("fit", fits), ("groups", inputs.groups is not None)):
            if given and served not in run.used:
                run.used.append(served)  # served as data with the inputs, not by a capability call
        self.last = run
        self.stage = NAMED
        metadata.check_class_name(self.sub, run.loaded)
        self.stage = LOADED
        check_loaded(self.sub, run)
        self.stage = USED
        check_used(self.sub, run)
        self.stage = OUTPUT
        return run.scores

    def checked(self, output, n: int, n_scored=None) -> np.ndarray:
        try:
            return check_scores(output, n, n_scored)
        except SandboxError as exc:
            raise quiet(exc) if self.private else exc

    def scorer_block(self) -> dict:
        return {
            "name": self.sub.name,
            "version": self.sub.version,
            "params": self.sub.params,
            "requires": list(self.sub.capabilities),
            "code_sha256": self.code_sha256,
            "kind": "submission",
            "owner": self.owner,
        }

    def provenance(self, feature_usage: dict) -> dict:
        return {"sandbox": {**self.last.jail, "seconds": round(self.last.seconds, 3)}}

    def record_fields(self) -> dict:
        return {"submission": self.sub.meta,
                "usage": {**(self.last.usage or {}),
                          "capabilities_used": capabilities_used(self.sub.capabilities, self.last.used)}}


VALIDATE_N = 64


def submission_spec(spec: RunSpec, sub) -> RunSpec:
    """``spec`` for ``sub``: no built-in scorer; its declared reference model, if any. A demo
    target it uses is built first (reused when present)."""
    reference = (sub.meta.get("reference_models") or [None])[0] if "reference" in sub.capabilities else None
    if sub.capabilities:
        tspec = targets.get_target(spec.target)
        if tspec.family == "demo":
            targets.ensure_demo_target(progress=spec.progress, target_id=tspec.id)
    return dataclasses.replace(spec, scorers=(), skipped=(), reference=reference)


def is_private(spec: RunSpec) -> bool:
    return bool(suite.get_split(spec.split).extra.get("private"))


def validation_subset(plan, handle, n: int) -> suite.calibration.Subset:
    """The rows a trainable submission fits on and is scored on in ``validate``: up to ``n // 4``
    members and as many non-members of the split's declared calibration subset (``spec.calibration``,
    else the handle's default: the subset ``evaluate`` hands it), and the evaluated rest within the
    first ``n`` rows. Only labels of the declared calibration subset cross, as in ``evaluate``."""
    declared = suite.calibration.select(plan.split, plan.spec.calibration or handle.default_calibration)
    labels = plan.labels()
    cal_rows = suite.calibration.positions(plan.uids, declared.calibration)
    per_class = max(1, n // 4)
    cal = [r for c in (1, 0) for r in cal_rows[labels[cal_rows] == c][:per_class]]
    rest = [plan.uids[r] for r in suite.calibration.positions(plan.uids, declared.rest) if r < n]
    counts = {side: {"members": int(sum(labels[r] == 1 for r in rows)), "nonmembers": int(sum(labels[r] == 0 for r in rows))}
              for side, rows in (("calibration", cal), ("rest", suite.calibration.positions(plan.uids, rest)))}
    counts["components_merged"] = declared.counts["components_merged"]
    return dataclasses.replace(declared, calibration=tuple(sorted(plan.uids[r] for r in cal)), rest=tuple(sorted(rest)),
                               counts=counts)


def validate(path, spec: RunSpec, *, n: int = VALIDATE_N, log_path: Path, limits: Limits = Limits(),
             allow_unsandboxed: bool = False, owner: str | None = None) -> dict:
    """Run every check on the first ``n`` rows of ``spec.split``; return a report ``{"ok",
    "checks": [...], "error", "warnings"}``. A trainable submission fits on rows of the declared
    calibration subset only (``validation_subset``); on a private split every row scored lies in
    the evaluated rest, and the report carries nothing the scorer's run chose (no class name it
    reported, no message of its own). ``owner``: who submits (the owner table, ``owners``, decides
    whether the name is theirs; None: only the names nobody may take are refused)."""
    checks: list[dict] = []
    report = {"path": str(path), "split": spec.split, "target": spec.target, "n": n, "checks": checks,
              "warnings": [], "ok": False, "error": None}
    private = is_private(spec)

    def passed(name, detail=""):
        checks.append({"check": name, "ok": True, "detail": detail})

    stage, handle = "copy of the folder", None
    try:
        with snapshot(path) as snap:
            stage = "metadata schema and name"
            sub = metadata.load(snap)
            owners.check(sub.name, owner, results_dirs=[d for d in (spec.blind_from,) if d is not None])
            report["submission"] = sub.meta
            passed(stage, f"{sub.name} v{sub.version}; capabilities: {', '.join(sub.capabilities) or 'none'}")
            stage = RUN

            def fresh():
                return SandboxedHandle(sub, code_hash(snap), log_path=log_path, limits=limits,
                                       allow_unsandboxed=allow_unsandboxed, private=private)

            handle = fresh()
            plan = evaluator.load(dataclasses.replace(submission_spec(spec, sub), limit=n), [handle])
            subset = validation_subset(plan, handle, n) if handle.fits else evaluator.rest_subset(plan)
            first = evaluator.score(plan, handle, subset)
            run = handle.last
            handle = None  # the first run's checks passed: later failures are named below
            shown = sub.class_name or ("the scorer" if private else run.loaded.get("class"))
            passed(RUN, f"{shown} on {len(first.ids)} {'groups' if first.groups else 'samples'} of {spec.split}"
                   + ("" if private else f" in {run.seconds:.2f} s") + ("" if run.sandboxed else " (NOT FULLY JAILED)"))
            passed(NAMED, sub.name)
            passed(LOADED)
            stage = "output length, type and finiteness"
            passed(stage, f"{len(first.scores)} finite floats" + (" (one per group)" if first.groups else ""))
            stage = "determinism"
            evaluator.same_scores(first, evaluator.score(plan, fresh(), subset), private=private)
            passed(stage, f"two runs in fresh sandboxes, bit-identical scores on these {len(first.ids)}; "
                   "`evaluate` runs twice on everything it scores")
            stage = "declared against used capabilities"
            warnings = check_used(sub, run)
            if private:  # which capabilities a run called, and how often, is the scorer's choice
                passed(stage, "no undeclared capability called")
            else:
                report["warnings"] = warnings
                report["usage"] = describe_usage(sub.capabilities, run.used, run.usage)
                passed(stage, report["usage"])
            report["ok"] = True
    except MembenchError as exc:
        if handle is not None:  # failed in the first run: at the stage the run got to
            stage = handle.stage
        checks.append({"check": stage, "ok": False, "detail": str(exc)})
        report["error"] = str(exc)
        report["error_kind"] = getattr(exc, "kind", "determinism" if isinstance(exc, evaluator.NotDeterministic)
                                       else "input")
    return report


def evaluate(path, spec: RunSpec, *, log_path: Path, limits: Limits = Limits(), allow_unsandboxed: bool = False,
             owner: str = MAINTAINERS) -> dict:
    """Score ``spec.split`` with the submission in the sandbox, twice (the determinism check on
    everything it scores), and write and return its record (as written). A submission declaring
    ``fit`` fits on calibration subset ``spec.calibration`` (default ``DEFAULT_CALIBRATION``)
    within ``spec.fit_budget`` and is scored on its evaluated rest only; on a private split every
    submission is scored on that rest (``evaluate.rest_subset``). ``spec.blind_from``: the results
    folder holding the split's blind-baseline diagnostics (for the AUC in excess of blind).
    ``owner``: who the record belongs to (a token's submitter name; the maintainers for the
    operator's own runs). Raises ``MembenchError`` (a ``SandboxError`` for scorer faults) and
    writes nothing then."""
    with snapshot(path) as snap:
        sub = metadata.load(snap)
        owners.check(sub.name, owner, results_dirs=[d for d in (spec.results_dir, spec.blind_from) if d is not None])
        if spec.calibration is not None and "fit" not in sub.capabilities and not is_private(spec):
            raise MembenchError(f"--calibration is for submissions that declare 'fit'; {sub.name} does not",
                                "drop --calibration (`membench calibration derive` puts any record on a subset's rest)")
        handle = SandboxedHandle(sub, code_hash(snap), log_path=log_path, limits=limits,
                                 allow_unsandboxed=allow_unsandboxed, owner=owner, private=is_private(spec))
        handle.verify_determinism = True
        (record,) = evaluator.run(submission_spec(spec, sub), [handle]).records
    return record
