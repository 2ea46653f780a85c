"""One grid job, as it runs inside a Ray worker: ``runner.run`` for one (target, split) with
all its scorers, writing its own feature cache and result files.

The job tells the driver when it starts (worker pid and host) and ends through the grid's
monitor queue, so the driver counts what is really running and how often each job was
attempted (an attempt whose worker dies never says it ended).
An input error (``MembenchError``: a scorer that needs a pool the split lacks, a target that
cannot be downloaded) is returned as a failure and never retried, since it would fail the
same way again; anything else (a killed worker, out of memory, a lost node) is retried by Ray.

Fault injection, for tests of the retry path: when ``MEMBENCH_GRID_FAULT`` holds
``{"job": "<target> | <split>", "marker": "<path>", "attempts": N}`` (N default 1), each of
the first N attempts of that job (an attempt knows it is one of them by creating the file
``<path>.<i>``, i < N, that did not exist yet) SIGKILLs its own worker as soon as its first
result record is on disk, so the job dies mid-run with part of its results written (or,
should the job get that far first, just before it returns). Unset, nothing of this runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

from .. import results, runner
from ..errors import MembenchError
from ..targets.context import CONTEXT_RULE

FAULT_ENV = "MEMBENCH_GRID_FAULT"
# What a job needs from the driver's environment (on a cluster, workers do not inherit it).
FORWARDED_ENV = ("MEMBENCH_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", FAULT_ENV)


def forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


# The worker's own values (a cluster node's settings), as they were before any job ran here.
_WORKER_ENV = {k: os.environ.get(k) for k in FORWARDED_ENV}


def _apply_env(env: dict[str, str]) -> None:
    """The driver's settings where it has them, else the worker's own: nothing is left over
    from an earlier job in a reused worker."""
    for name in FORWARDED_ENV:
        value = env.get(name, _WORKER_ENV[name])
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _arm_fault(job, results_dir: Path):
    """The kill of the fault described in the module docstring, armed on the job's first N
    attempts only; returns the kill (to fire at the end if the watcher did not) or None."""
    raw = os.environ.get(FAULT_ENV)
    if not raw:
        return None
    fault = json.loads(raw)
    if fault.get("job") != job.key:
        return None
    for attempt in range(int(fault.get("attempts", 1))):
        try:  # the attempt that creates marker.N is the N-th; later ones run normally
            os.close(os.open(f"{fault['marker']}.{attempt}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            continue
    else:
        return None
    first = results.record_path(results_dir, job.split, job.target, job.result_names[0], job.revision)

    def stamp():
        try:
            return first.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    before = stamp()

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def watch():
        while stamp() == before:
            time.sleep(0.002)
        kill()

    threading.Thread(target=watch, daemon=True, name="grid-fault").start()
    return kill


def run_job(job, settings: dict, monitor=None) -> dict:
    """Run ``job`` (a ``plan.Job``) with ``settings`` (results_dir, dtype, batch_tokens,
    gpus, allow_invalid, reference, context_rule, env); report the start to ``monitor`` (a Ray queue)."""
    _apply_env(settings.get("env", {}))
    started = time.time()
    where = {"pid": os.getpid(), "host": socket.gethostname()}
    if monitor is not None:
        monitor.put(("started", job.key, where))
    results_dir = Path(settings["results_dir"])
    fault = _arm_fault(job, results_dir)
    counter: dict = {}
    try:
        records = runner.run(
            job.target, job.split, list(job.scorers), results_dir=results_dir,
            device="cuda" if settings.get("gpus", 0) > 0 else "cpu", dtype=settings["dtype"],
            batch_tokens=settings["batch_tokens"], allow_invalid=settings.get("allow_invalid", False),
            progress=False, reference=settings.get("reference"), counter=counter,
            context_rule=settings.get("context_rule", CONTEXT_RULE),
        )
    except MembenchError as exc:
        out = {"status": "failed", "error": str(exc), "seconds": time.time() - started, **where}
    else:
        if fault is not None:
            fault()
        out = {
            "status": "done",
            "seconds": time.time() - started,
            "forward_tokens": int(counter.get("forward_tokens", 0)),
            "aucs": {r["scorer"]["name"]: r["metrics"]["auc"] for r in records},
            **where,
        }
    if monitor is not None:
        monitor.put(("ended", job.key, where))
    return out
