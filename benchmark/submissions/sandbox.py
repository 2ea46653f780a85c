"""Run a submitted scorer in the jail and talk to it over a socket, under one deadline.

The harness keeps the model; the sandbox gets ids, texts and token statistics as data and
reaches every capability through ``ProxyAccess`` (``child.py``), answered here by a
``CapabilityServer`` after refusing what the submission did not declare. How the scorer is
isolated is the ``jail`` package's business; this module owns the conversation:

- one deadline (``Limits.wall_s``) for the whole run: every send and receive gives up at it,
  capability calls are served in pieces that check it, and a watchdog thread kills the whole
  run at it whatever the harness thread is doing;
- byte caps per message and per run (``wire.Caps``), every message type-checked in one
  place (``wire.check_message``); a malformed message ends the run with one protocol error;
- the scorer's stdout and stderr go to the job log through a pipe (``joblog.ScorerOutput``).

Every way a run can go wrong ends in ``SandboxError`` with one clear line (scorer-controlled
text shortened and stripped of control characters); nothing it returns is trusted before
``check_scores``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..attacks.fit_budget import BudgetExceeded
from ..errors import MembenchError
from . import guards, safe_text, wire
from .capability_server import CallTimeout, Refused
from .folder import copy_folder
from . import jail as _jail
from .jail import Jail, JailError, Limits
from .jail import view as jail_view
from .joblog import ScorerOutput, harness_line


class SandboxError(MembenchError):
    """A submission failed in (or could not enter) the sandbox. ``kind`` names the fault."""

    def __init__(self, message: str, hint: str | None = None, kind: str = "error"):
        super().__init__(message, hint)
        self.kind = kind


@dataclass
class RunResult:
    scores: np.ndarray
    usage: dict
    used: list[str]  # capabilities the scorer actually called
    refused: list[str] = field(default_factory=list)  # undeclared calls the harness refused
    loaded: dict = field(default_factory=dict)  # class, name, version, requires
    seconds: float = 0.0
    sandboxed: bool = True
    jail: dict = field(default_factory=dict)  # pieces used, limits


def isolation_problem() -> str | None:
    """Why this machine cannot fully jail a scorer (None when it can)."""
    gaps = _jail.missing()
    return "; ".join(gaps) if gaps else None


def undeclared_message(method: str, capability: str) -> str:
    return (f"the scorer called access.{method}(), which needs capability '{capability}', but did not declare it: "
            f"add '{capability}' to `requires` in scorer.py and to `capabilities` in submission.yaml")


# What the kernel said when the scorer reached for something the jail does not give, and
# what that means for the submitter. Matched against the scorer's exception message.
ESCAPES = (
    ("[Errno 97]", "tried to open a network socket (only AF_UNIX sockets exist in the sandbox)",
     "a scorer gets everything it may use as inputs; it cannot download or connect anywhere"),
    ("[Errno 101]", "tried to open a network connection (the sandbox has no network)",
     "a scorer gets everything it may use as inputs; it cannot download or connect anywhere"),
    ("[Errno 30]", "tried to write outside its scratch folder (read-only file system)",
     "write scratch files under $TMPDIR (/tmp), the only writable folder"),
    ("[Errno 28]", "filled its scratch disk (the writable /tmp is limited)",
     "write less, or raise --disk-mb"),
    ("[Errno 27]", "wrote a file past the per-file size limit", "write smaller files"),
    ("[Errno 13] Permission denied", "tried to reach a file it may not", "labels and the cache are never visible to scorers"),
    ("[Errno 2] No such file or directory: '/", "opened a path that does not exist inside the sandbox",
     "only Python, numpy/scipy/scikit-learn/pandas, the scorer interface and the submission exist there"),
)


def _describe_exit(code: int, limits: Limits, oom: bool) -> tuple[str, str]:
    if oom:
        return "memory", (f"the scorer ran out of memory (whole-run limit {limits.memory_mb} MiB, "
                          f"plus its {limits.disk_mb} MiB scratch disk) and was killed")
    sig = -code if code < 0 else (code - 128 if code > 128 else 0)
    if sig:
        try:
            name = signal.Signals(sig)
        except ValueError:
            return "crash", f"the scorer process died with signal {sig}"
        if name == signal.SIGXCPU:
            return "cpu", f"the scorer used more than its CPU-time limit ({limits.cpu_s} s) and was stopped"
        if name == signal.SIGXFSZ:
            return "file_size", f"the scorer wrote a file past the {limits.fsize_mb} MiB file-size limit"
        if name == signal.SIGKILL:
            return "killed", "the scorer process was killed (out of memory, or a limit of the sandbox)"
        if name == signal.SIGSYS:
            return "escape", "the scorer made a system call the sandbox forbids and was killed"
        return "crash", f"the scorer process died with signal {name.name}"
    return "crash", f"the scorer process exited (status {code}) without returning scores"


def _from_error_message(msg: dict, limits: Limits) -> SandboxError:
    stage, etype = msg["stage"], safe_text.one_line(msg["type"], 80)
    emsg = safe_text.one_line(msg["message"], 300)
    tb = msg["traceback"]
    if msg["kind"] == "memory":
        return SandboxError(f"the scorer ran out of memory (limit {limits.memory_mb} MiB)",
                            "use less memory, or raise --memory-mb", kind="memory")
    if stage == "import":
        last = safe_text.one_line((tb.strip().splitlines() or [""])[-1], 300)
        return SandboxError(f"scorer.py could not be imported: {etype}: {emsg}",
                            last if etype == "SyntaxError" else "fix scorer.py and validate again", kind="import")
    if etype == "CapabilityRefused":
        return SandboxError(f"capability call refused: {emsg}", kind="capabilities")
    if "[Errno 1] Operation not permitted" in msg["message"] and any(
            w in tb for w in ("fork", "Popen", "spawn", "subprocess", "clone", "multiprocessing")):
        return SandboxError(f"the scorer tried to start a process ({etype}: {emsg}); scorers run in one "
                            "process (threads are allowed)", "score in one process", kind="processes")
    if etype == "RuntimeError" and "can't start new thread" in msg["message"] or (
            etype == "BlockingIOError" and "Resource temporarily unavailable" in msg["message"]):
        return SandboxError(f"the scorer tried to start more threads than allowed (limit {limits.nproc}): {emsg}",
                            "use fewer threads", kind="processes")
    for marker, what, hint in ESCAPES:
        if marker in msg["message"]:
            return SandboxError(f"the scorer {what}: {etype}: {emsg}", hint, kind="escape")
    if stage == "output":
        return SandboxError(f"the scorer returned the wrong type: {emsg}", kind="output")
    if stage == "init":
        return SandboxError(f"the sandbox could not read its inputs: {etype}: {emsg}", kind="protocol")
    doing = {"load": "loading", "fit": "fitting (fit())"}.get(stage, "scoring")
    return SandboxError(f"the scorer raised {etype} while {doing}: {emsg}",
                        "see the job log for the traceback", kind="exception")


def run_scorer(
    submission_dir: Path,
    *,
    uids: list[str],
    texts: list[str],
    features=None,
    params: dict | None = None,
    class_name: str | None = None,
    declared: tuple[str, ...] = ("features",),
    access=None,
    limits: Limits = Limits(),
    log_path: Path,
    allow_unsandboxed: bool = False,
    caps: wire.Caps = wire.Caps(),
    fit=None,
    groups: list[str] | None = None,
    scorer_output: bool = True,
) -> RunResult:
    """Score ``texts`` with the submission in the jail; raise ``SandboxError`` on any fault.

    ``access`` answers capability calls (a ``CapabilityServer``); calls to capabilities not in
    ``declared`` are refused before they reach it. ``fit`` (a ``FitRequest``: the calibration
    subset's uids, texts, statistics and labels, and the fit meter) makes the scorer fit on
    those first, inside the same jail; every call until it reports ``fitted`` is charged to the
    meter, and one that would pass the fit budget ends the run (``BudgetExceeded``). ``groups``
    (a groups scorer): the group of every row; its output is then one score per group (an array,
    or a ``{group: score}`` dict returned as ``RunResult.scores``), checked by the caller.
    ``scorer_output=False`` (a private split): the scorer's stdout and stderr are read and
    dropped, so the log at ``log_path`` carries the harness's lines only.
    """
    gaps = _jail.missing()
    if gaps and not allow_unsandboxed:
        raise SandboxError(
            "this machine cannot jail a scorer; missing: " + "; ".join(gaps),
            "run the worker where bubblewrap, libseccomp, a writable cgroup and root are available, or pass "
            "--allow-unsandboxed to run with only the pieces that are there (never for untrusted code)",
            kind="no_sandbox",
        )
    log_path = Path(log_path)
    jail_view.check_outside_jail()  # MEMBENCH_HOME (labels, secrets, the queue) never in the jail's view
    with Jail(limits) as jail:
        copy_folder(submission_dir, jail.snapshot)
        harness_line(log_path, "sandbox run: " + ("jailed (" + ", ".join(jail.pieces) + ")" if jail.sandboxed
                                                 else "NOT FULLY JAILED (missing: " + "; ".join(gaps) + ")"))
        parent, child = socket.socketpair()
        start = time.monotonic()
        deadline = start + limits.wall_s
        try:
            try:
                proc = jail.start(child.fileno(), {})
            except (JailError, OSError) as exc:
                raise SandboxError(f"could not start the sandbox ({safe_text.one_line(exc, 300)})", kind="no_sandbox") from None
            finally:
                child.close()
            output = ScorerOutput(proc.stdout.fileno(), log_path if scorer_output else Path(os.devnull),
                                  limits.log_kb << 10)
            output.start()
            watchdog = threading.Timer(max(limits.wall_s, 0.0) + 0.5, jail.kill)
            watchdog.daemon = True
            watchdog.start()
            channel = wire.Channel(parent, deadline=deadline, caps=caps)
            try:
                return _converse(channel, jail, proc, start, deadline, limits, uids, texts, features, params,
                                 class_name, declared, access, fit, groups)
            finally:
                watchdog.cancel()
                peak = jail.peak_memory()
                jail.kill()
                channel.close()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:  # Jail.close() tries again, and says nothing either
                    pass
                output.join(timeout=10)
                harness_line(log_path, f"sandbox run ended after {time.monotonic() - start:.2f} s"
                             + (f"; peak memory of the run {peak / 2**20:.0f} MiB" if peak else ""))
        finally:
            parent.close()


@dataclass
class FitRequest:
    """What crosses into the jail for ``fit``: the calibration rows and their labels only."""

    uids: list
    texts: list
    features: object | None
    labels: np.ndarray
    meter: object  # attacks.FitMeter


def _metered(access):
    """The in-process access behind a ``CapabilityServer`` (where the fit meter is set)."""
    return getattr(access, "access", None)


def _converse(channel, jail, proc, start, deadline, limits, uids, texts, features, params, class_name,
              declared, access, fit=None, groups=None) -> RunResult:
    used, refused, loaded = [], [], {}
    fitting = fit is not None

    def died(exc: Exception) -> SandboxError:
        # The channel failed: explain by how the process ended, if it did.
        try:
            code = proc.wait(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
        except Exception:  # noqa: BLE001  (still running: the protocol itself was broken)
            code = None
        if time.monotonic() >= deadline:
            return _timeout(limits)
        if code is None:
            return SandboxError(f"the scorer broke the harness protocol ({safe_text.one_line(exc, 300)})",
                                kind="protocol")
        kind, text = _describe_exit(code, limits, jail.oom_killed())
        return SandboxError(text, "see the job log", kind=kind)

    init = {"op": "init", "class": class_name, "params": params or {}, "uids": list(uids), "texts": list(texts),
            "has_features": features is not None}
    arrays = wire.stats_to_arrays(features, "f_") if features is not None else {}
    if groups is not None:
        init["groups"] = [str(g) for g in groups]
    if fitting:
        init["fit"] = {"uids": list(fit.uids), "texts": list(fit.texts), "has_features": fit.features is not None}
        arrays["c_labels"] = np.asarray(fit.labels, np.int32)
        if fit.features is not None:
            arrays.update(wire.stats_to_arrays(fit.features, "c_"))
        if _metered(access) is not None:
            _metered(access).meter = fit.meter
    try:
        channel.send(init, arrays)
    except wire.ProtocolError as exc:
        raise died(exc) from None
    while True:
        try:
            header, arrays = channel.recv()
        except wire.Timeout:
            raise _timeout(limits) from None
        except wire.TooLarge as exc:
            raise SandboxError(f"the scorer sent too much over the protocol ({exc})",
                               "send scores, not data; call capabilities on fewer texts at a time",
                               kind="protocol") from None
        except wire.ProtocolError as exc:
            raise died(exc) from None
        try:
            msg = wire.check_message(header, arrays)
        except wire.ProtocolError as exc:
            raise SandboxError(f"the scorer broke the harness protocol ({safe_text.one_line(exc, 300)})",
                               "use inputs.access; never write to the harness's socket yourself", kind="protocol") from None
        op = msg["op"]
        if op == "loaded":
            loaded = {k: msg[k] for k in ("class", "name", "version", "requires")}
            continue
        if op == "error":
            raise _from_error_message(msg, limits)
        if op == "fitted":
            if not fitting:
                raise SandboxError("the scorer said it fitted, but no calibration subset was given to it",
                                   "use inputs.access; never write to the harness's socket yourself", kind="protocol")
            fitting = False
            if _metered(access) is not None:
                _metered(access).meter = None
            fit.meter.check_time()  # the wall time of fit() itself
            continue
        if fitting and op == "call":
            fit.meter.check_time()
        if op in ("result", "group_result") and fitting:
            raise SandboxError("the scorer sent scores before its fit() returned", kind="protocol")
        if op == "group_result" and groups is None:
            raise SandboxError("the scorer sent scores per group, but it was given no groups",
                               "return one float per sample (an array)", kind="output")
        if op in ("result", "group_result"):
            scores = msg["arrays"]["scores"]
            if op == "group_result":
                if scores.ndim != 1 or len(scores) != len(msg["groups"]):
                    raise SandboxError(f"the scorer sent {len(msg['groups'])} groups with {scores.size} scores",
                                       "return a dict {group id: score}", kind="output")
                scores = dict(zip(msg["groups"], scores.tolist()))
                if len(scores) != len(msg["groups"]):
                    raise SandboxError("the scorer returned a group twice", "return each group once", kind="output")
            return RunResult(scores=scores, usage=dict(access.usage) if access is not None else {},
                             used=used, refused=refused, loaded=loaded, seconds=time.monotonic() - start,
                             sandboxed=jail.sandboxed, jail=jail.describe())
        # op == "call"
        method = msg["method"]
        reply, out = _answer(method, msg["kwargs"], declared, access, deadline, used, refused, limits)
        try:
            channel.send(reply, out)
        except wire.Timeout:
            raise SandboxError(
                f"the scorer did not read the harness's replies before the deadline ({limits.wall_s:g} s) and was stopped",
                "read every reply (use inputs.access, which does)", kind="timeout") from None
        except wire.ProtocolError as exc:
            raise died(exc) from None


def _answer(method, kwargs, declared, access, deadline, used, refused, limits) -> tuple[dict, dict]:
    usage = {"usage": access.usage} if access is not None else {}
    if method not in wire.METHODS:
        refused.append(method)
        return {"ok": False, "error": f"there is no capability method {safe_text.name(method, 40)}; the methods are "
                                      f"{', '.join(wire.METHODS)}", **usage}, {}
    cap = wire.METHODS[method].capability
    if cap is not None and cap not in declared:
        refused.append(cap)
        return {"ok": False, "error": undeclared_message(method, cap), **usage}, {}
    if access is None:
        wanted = cap or next((c for c in declared if c != "features"), "logprobs")
        refused.append(wanted)
        return {"ok": False, "error": f"access.{method}() needs model access: declare a capability such as "
                                      f"'{wanted}' in `requires` and `capabilities`", **usage}, {}
    if cap is not None and cap not in used:
        used.append(cap)
    try:
        fields, out = access.serve(method, kwargs, deadline)
    except Refused as exc:
        return {"ok": False, "error": safe_text.one_line(exc, 500), "usage": access.usage}, {}
    except CallTimeout:
        raise _timeout(limits) from None
    except BudgetExceeded:
        raise  # over the fit budget: the run ends here, nothing is published
    except MembenchError as exc:
        return {"ok": False, "error": guards.scrub_paths(safe_text.one_line(exc, 500)), "usage": access.usage}, {}
    except Exception as exc:  # noqa: BLE001  (e.g. a lone surrogate the tokenizer cannot encode: one line back)
        return {"ok": False, "error": guards.call_error(method, exc, kwargs), "usage": access.usage}, {}
    return {"ok": True, "usage": access.usage, **fields}, out


def _timeout(limits: Limits) -> SandboxError:
    return SandboxError(f"the scorer ran past the wall-clock timeout ({limits.wall_s:g} s) and was stopped",
                        "make it faster, or score fewer texts per call", kind="timeout")


def check_scores(scores, n: int, n_scored_tokens=None) -> np.ndarray:
    """The output check before any metric: one finite float per sample, within ±``MAX_ABS_SCORE``.

    NaN is accepted only for a sample with no scored tokens (when features are given), the same
    rule as for built-in scorers; anything else non-finite is an error.
    """
    if scores is None or not isinstance(scores, np.ndarray):
        raise SandboxError("the scorer returned no score array", kind="output")
    if scores.ndim != 1 or len(scores) != n:
        raise SandboxError(
            f"the scorer returned shape {tuple(scores.shape)}, expected ({n},): one score per sample",
            kind="length",
        )
    scores = scores.astype(np.float64)
    bad = ~np.isfinite(scores)
    if n_scored_tokens is not None:
        bad &= ~(np.isnan(scores) & (np.asarray(n_scored_tokens) == 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SandboxError(
            f"the scorer returned {int(bad.sum())} non-finite score(s) (first: {float(scores[i])} at index {i})",
            "return a finite float for every sample; higher = more likely member",
            kind="non_finite",
        )
    check_score_range(scores)
    return scores


MAX_ABS_SCORE = 1e30  # beyond this a score is refused: float32 stays finite, sums of a split do too


# --- scores ------------------------------------------------------------------------------------------

def check_score_range(scores: np.ndarray) -> None:
    """Refuse finite scores beyond ``MAX_ABS_SCORE`` (NaN and inf are the finiteness check's)."""
    with np.errstate(invalid="ignore"):
        big = np.isfinite(scores) & (np.abs(scores) > MAX_ABS_SCORE)
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise SandboxError(f"the scorer returned {int(big.sum())} score(s) beyond ±{MAX_ABS_SCORE:g} "
                           f"(first: {float(scores[i]):.3g} at index {i})",
                           "only the order of scores matters: squash them (e.g. tanh, or a log) into a bounded range",
                           kind="range")
