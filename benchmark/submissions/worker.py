"""The worker: takes queued submissions one at a time, validates, evaluates, publishes.

At start it refuses to serve when MEMBENCH_HOME, the results or the queue lie in a folder the
jail shows (``home_guard``), and sweeps what a killed harness left (sandbox scratch folders,
snapshots, run cgroups). For each job: the checks of ``guards`` before anything is loaded (the
target and reference models are registry ids of built targets within the model budget), then,
in a memory-limited helper process (``guards.in_helper``), ``validate`` (every check, in the
sandbox) and ``evaluate`` on the job's split into the job's own staging folder; then the owner
table (``owners``: a name belongs to the maintainers when they published it, else to the owner
that first published it), then ``Queue.finish`` (only the holder of the job's current lease
token can), then publication as one transaction (``publication``): the staged records go
through ``results.write`` and the publication gate into a copy of the published folder, the
site is built from it, and only then is the published folder changed. A job that is done but
not yet published (the worker died in between) is published by the next worker that starts.
Whatever ends a job (any exception, the helper's death) ends it with one line in the job log,
free of host paths, and the worker goes on serving.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import home_guard
from ..errors import MembenchError
from ..home import scratch_dir
from ..results import public_view
from ..results.published import LADDER_PENDING, is_private
from . import guards, jail, owners, publication
from .evaluation import evaluate, validate
from .folder import sweep_dead
from .jail import Limits
from .joblog import harness_line
from .queue import MAINTAINERS, Job, Queue

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    results_dir: Path
    site_out: Path | None = None
    lease_s: float = 60.0
    poll_s: float = 1.0
    limits: Limits = field(default_factory=Limits)
    allow_unsandboxed: bool = False
    validate_n: int = 64
    device: str = "cpu"
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    model_budget: guards.ModelBudget = field(default_factory=guards.ModelBudget)  # the job helper's memory
    helper: bool = True  # validate and evaluate in a memory-limited helper process (guards.in_helper)


def _log(job: Job, line: str) -> None:
    harness_line(job.log_path, line)


class _Heartbeat(threading.Thread):
    def __init__(self, queue: Queue, job: Job, lease_s: float):
        super().__init__(daemon=True)
        self.queue, self.job, self.lease_s = queue, job, lease_s
        self.stop = threading.Event()
        self.lost = False

    def run(self):
        while not self.stop.wait(self.lease_s / 3):
            try:
                if not self.queue.heartbeat(self.job, self.lease_s):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001  (a busy database: try again next beat)
                log.warning("heartbeat for job %s failed", self.job.id, exc_info=True)


def publish(queue: Queue, job_id: str, cfg: WorkerConfig) -> list[str]:
    """Copy a done job's staged results into the published folder (through the results store,
    which validates them, and the publication gate), rebuilding the site: one transaction
    (``publication``), so a record whose pages do not build is not published and the site and
    results stay as they were. Idempotent. Returns the written record files."""
    from .. import results

    staged = queue.job_dir(job_id) / "results"

    def write(into: Path) -> list[Path]:
        written = []
        for path, record in results.iter_records(staged):
            scores = pd.read_parquet(path.with_name(record["per_sample"]["file"]))
            columns = {c: scores[c].to_numpy() for c in scores.columns if c not in ("uid", "score")}  # e.g. truncated
            written.append(results.write(into, record, scores["uid"].tolist(), scores["score"].to_numpy(), columns=columns))
        return written

    def pages(folder: Path) -> None:
        from .. import site

        site.build(folder, cfg.site_out)

    written = publication.transaction(cfg.results_dir, write, pages if cfg.site_out is not None else None)
    queue.mark_published(job_id)
    return [str(p) for p in written]


def _run_job(job: Job, cfg: WorkerConfig, owner: str) -> dict:
    """validate, then evaluate into the job's staging folder; the record (run in the helper)."""
    report = validate(job.folder, split_id=job.split, target_id=job.target, n=cfg.validate_n,
                      log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed,
                      device=cfg.device, owner=owner)
    for c in report["checks"]:
        _log(job, f"validate: {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
    if not report["ok"]:
        raise MembenchError(f"validation failed: {report['error']}")
    staged = job.dir / "results"
    shutil.rmtree(staged, ignore_errors=True)
    return evaluate(job.folder, split_id=job.split, target_id=job.target, results_dir=staged,
                    log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed,
                    device=cfg.device, blind_from=cfg.results_dir, owner=owner)


def process(queue: Queue, job: Job, cfg: WorkerConfig) -> bool:
    """Run one claimed job to its end; True if it was done (and published). Whatever ends the
    job (any exception, ``SystemExit`` and ``KeyboardInterrupt`` included, or the helper's
    death) ends it with one line in its log; the worker goes on."""
    owner = job.owner or MAINTAINERS
    _log(job, f"claimed by {cfg.name} (attempt {job.attempts}); split {job.split}, target {job.target}, "
              f"owner {owner}")
    beat = _Heartbeat(queue, job, cfg.lease_s)
    try:
        # Before anything is loaded: the target and reference models are registry ids, built,
        # within the helper's budget; the name is free or the owner's.
        guards.check_job(job.folder, job.target, cfg.model_budget)
        if cfg.helper:
            record = guards.in_helper(_run_job, job, cfg, owner, memory_mb=cfg.model_budget.memory_mb,
                                      started=beat.start)
        else:
            beat.start()
            record = _run_job(job, cfg, owner)
        owners.check(record["scorer"]["name"], owner, queue=queue, results_dirs=[cfg.results_dir], claim=True)
        # What the submitter sees (the job's result and log) is what the leaderboard shows: the
        # metrics at the precision their intervals support, never the stored full precision; on a
        # private split no figure at all here (the Ladder decides at publication what is shown).
        summary = {"scorer": record["scorer"]["name"], "split": job.split, "target": record["target"]["id"],
                   "usage": record["usage"]}
        if is_private(record):
            summary["verdict"] = LADDER_PENDING
            _log(job, f"evaluate: scored {record['counts']['n_scored']} samples; {LADDER_PENDING}")
        else:
            m = public_view(record)["metrics"]
            summary.update(auc=m["auc"], auc_ci95=m["auc_ci95"])
            _log(job, f"evaluate: AUC {m['auc']} {m['auc_ci95']} on {record['counts']['n_scored']} samples")
        if beat.lost or not queue.finish(job, "done", result=summary):
            _log(job, "lease lost to another worker; not publishing")
            return False
        try:
            written = publish(queue, job.id, cfg)
        except BaseException as exc:  # noqa: BLE001  (refused by the store or the gate, pages that do not build)
            error = _failed(job, exc, "not published: ")
            queue.refuse_publication(job.id, error)
            return False
        _log(job, f"published: {', '.join(Path(p).name for p in written)}")  # file names: no host path
        return True
    except BaseException as exc:  # noqa: BLE001  (whatever the job raised: one line, the worker goes on)
        queue.finish(job, "failed", error=_failed(job, exc))
        return False
    finally:
        beat.stop.set()


def _failed(job: Job, exc: BaseException, what: str = "") -> str:
    """Log a job's end in one line (the traceback to the operator's log only); return the line."""
    if not isinstance(exc, MembenchError):
        log.error("job %s: %s", job.id, "".join(traceback.format_exception(exc))[-8000:])
    error = guards.job_error(exc)
    _log(job, f"FAILED: {what}{error}")
    return what + error


def serve(queue: Queue, cfg: WorkerConfig, *, exit_when_empty: bool = False, max_jobs: int | None = None,
          stop: threading.Event | None = None, on_job=None) -> int:
    """Take jobs until stopped (or, with ``exit_when_empty``, until nothing is pending or
    running: a job another worker holds may still come back when its lease expires); return
    the number of jobs this worker processed."""
    stop = stop or threading.Event()
    home_guard.check_outside_jail(results=cfg.results_dir, queue=queue.root)  # no folder of ours in the jail's view
    swept = {**jail.sweep(), "snapshots": sweep_dead(scratch_dir("snapshots"))}
    if any(swept.values()):
        log.warning("removed what a stopped harness left behind: %s", swept)

    def catch_up():
        for job_id in queue.unpublished():
            log.warning("publishing job %s, finished by a worker that stopped before publishing", job_id)
            try:
                publish(queue, job_id, cfg)
            except BaseException as exc:  # noqa: BLE001  (e.g. a name taken meanwhile: never retried forever)
                log.error("job %s: not published: %s", job_id, guards.job_error(exc))
                queue.refuse_publication(job_id, guards.job_error(exc))

    catch_up()
    n = 0
    while not stop.is_set() and (max_jobs is None or n < max_jobs):
        job = queue.claim(cfg.name, cfg.lease_s)
        if job is None:
            catch_up()
            counts = queue.counts()
            if exit_when_empty and counts["pending"] == 0 and counts["running"] == 0:
                break
            stop.wait(cfg.poll_s)
            continue
        ok = process(queue, job, cfg)
        n += 1
        if on_job is not None:
            on_job(job, ok)
    return n
