"""``SandboxedHandle``: a submission as the one evaluator runs it, in the jail.

It is the ``evaluate.ScorerHandle`` of submitted code: ``run`` hands the rows the evaluator
chose to ``sandbox.run_scorer`` (ids, texts, token statistics when ``features`` is declared,
the group of every row for ``groups``; for ``fit`` the calibration rows and their labels, the
only labels that cross the pipe), with the run's ``MeteredModelAccess`` behind a
``CapabilityServer`` when the submission declared model access. After the run it checks what
the class declared (``requires`` against ``submission.yaml``) and the calls the harness
refused; ``checked`` is the output check (one finite float per sample; NaN only for a text
with no scored token). Its record parts: the scorer block (kind ``submission``, the owner, the
hash of the folder's files), the sandbox in the provenance, the metadata and the usage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import MembenchError
from ..evaluate import FitTask, ScorerHandle
from ..hashing import sha256_files
from .capability_server import CapabilityServer
from .jail import Limits
from .queue import MAINTAINERS
from .sandbox import FitRequest, RunResult, SandboxError, check_scores, run_scorer

DEFAULT_CALIBRATION = "cal10"

# The stages of a sandboxed run, as `validate` reports them.
RUN = "import and run in the sandbox"
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


class SandboxedHandle(ScorerHandle):
    """A submission (``metadata.Submission`` of a snapshot folder) run in the jail."""

    in_process = False
    default_calibration = DEFAULT_CALIBRATION

    def __init__(self, sub, code_sha256: str, *, log_path: Path, limits: Limits = Limits(),
                 allow_unsandboxed: bool = False, owner: str = MAINTAINERS):
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
        run = run_scorer(self.sub.path, uids=inputs.uids, texts=inputs.texts, features=inputs.features,
                         params=self.sub.params, class_name=self.sub.class_name, declared=self.sub.capabilities,
                         access=server, limits=self.limits, log_path=self.log_path,
                         allow_unsandboxed=self.allow_unsandboxed, fit=request, groups=inputs.groups)
        for served, given in (("fit", fit is not None), ("groups", inputs.groups is not None)):
            if given and served not in run.used:
                run.used.append(served)  # served as data with the inputs, not by a capability call
        self.last = run
        self.stage = LOADED
        check_loaded(self.sub, run)
        self.stage = USED
        check_used(self.sub, run)
        self.stage = OUTPUT
        return run.scores

    def checked(self, output, n: int, n_scored=None) -> np.ndarray:
        return check_scores(output, n, n_scored)

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
