"""The worker: takes queued submissions one at a time, validates, evaluates, publishes.

At start it refuses to serve when MEMBENCH_HOME, the results or the queue lie in a folder the
jail shows (``jail.view.check_outside_jail``), and sweeps what a killed harness left (sandbox scratch folders,
snapshots, run cgroups). For each job: the checks of ``guards`` before anything is loaded (the
target and reference models are registry ids of built targets within the model budget); then,
in a memory-limited helper process forked for the job (``guards.in_helper``), ``validate``
(every check, in the sandbox) and ``evaluate`` on the job's split into the job's own staging
folder (both through the one evaluator, with the job's ``RunSpec``; ``evaluate`` runs the
scorer twice on everything it scores); then the owner table (``owners``: a name is the
maintainers' when they published it, else the owner's that first published it; no record of
another owner or kind is ever replaced), then ``Queue.finish`` (only the holder of the job's
current lease token can), then publication as one transaction (``publication``): each staged
result goes through ``results.write`` into a copy of the published results folder, the publish
hook the worker was given (``WorkerConfig.on_publish``, called with that folder and the files
written: the command line's runs the publication gate on those files, ``results.gate.publish``,
then rebuilds the site) runs on it, and only then is the published folder changed; a hook that
fails leaves the results and the site as they were. The worker never imports the site. A job
that is done but not yet published (the worker died in between) is published by the next
worker that starts. Whatever ends a job (any exception, ``SystemExit`` and
``KeyboardInterrupt`` included, or the helper's death) ends it with one line in the job log,
free of host paths, and the worker goes on serving.

What the submitter is told (the job's result and log): on a public split the figures as the
leaderboard shows them (rounded to the precision their intervals support); on a private split
no figure of the run, no usage count and no scorer output (the log carries the harness's lines
only) but, once published, the Ladder's verdict on the record (``published.owner_verdict``:
shown or not, and the published figures only when it is shown). File names in the log have
their key hash masked (``naming.masked_name``: the key holds the split's content hash).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import results
from ..errors import MembenchError
from ..evaluate import RunSpec
from ..home import scratch_dir
from ..results.naming import masked_name
from ..results.published import LADDER_PENDING, is_private, owner_verdict
from . import guards, jail, metadata, owners, publication
from .sandboxed import evaluate, validate
from .folder import sweep_dead
from .jail import Limits
from .jail import view as jail_view
from .joblog import harness_line
from .owners import MAINTAINERS
from .queue import Job, Queue

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    """``on_publish``: called with the published results folder and the record files just
    written after each publication (the command line passes the publication gate on those files
    followed by a site rebuild; None: publish the results only): it runs on a copy of the
    folder, before the published folder changes (``publication``). ``model_budget``: the memory
    of each job's helper process, and the largest model it may load; ``helper``: run validate
    and evaluate in that helper (False: in the worker, for tests of the worker alone)."""

    results_dir: Path
    on_publish: Callable[[Path, list[Path]], None] | None = None
    lease_s: float = 60.0
    poll_s: float = 1.0
    limits: Limits = field(default_factory=Limits)
    allow_unsandboxed: bool = False
    validate_n: int = 64
    device: str = "cpu"
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    model_budget: guards.ModelBudget = field(default_factory=guards.ModelBudget)
    helper: bool = True


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


def shown_path(results_dir: Path, path: Path) -> str:
    """A published file as a job log may name it: relative to the results folder, key masked."""
    try:
        path = Path(path).relative_to(results_dir)
    except ValueError:
        path = Path(Path(path).name)
    return masked_name(path.as_posix())


def verdicts(written: list[Path]) -> list[dict]:
    """What the owner may learn of each private-split record just published (the Ladder's
    verdict, read from the record as the gate left it); nothing for a public split's."""
    out = []
    for path in written:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if is_private(record):
            out.append(owner_verdict(record))
    return out


def publish(queue: Queue, job_id: str, cfg: WorkerConfig) -> list[Path]:
    """Publish a done job's staged results as one transaction (``publication``): through the
    results store (which validates them) into a copy of the published folder, the publish hook
    on that copy, and only then into the published folder; then tell the job's owner the
    Ladder's verdict on a private split's record. Idempotent. Returns the published files."""
    staged = queue.job_dir(job_id) / "results"

    def write(into: Path) -> list[Path]:
        written = []
        for path, record in results.iter_records(staged):
            scores = pd.read_parquet(path.with_name(record["per_sample"]["file"]))
            columns = {c: scores[c].to_numpy() for c in scores.columns if c not in ("uid", "score")}  # e.g. truncated
            written.append(Path(results.write(into, record, scores["uid"].tolist(), scores["score"].to_numpy(),
                                              columns=columns)))
        return written

    written = publication.transaction(cfg.results_dir, write, cfg.on_publish)
    told = verdicts(written)
    for verdict in told:
        harness_line(queue.job_dir(job_id) / "job.log", "ladder: " + _verdict_line(verdict))
    queue.mark_published(job_id, verdict=told[0] if told else None)
    return written


def _verdict_line(verdict: dict) -> str:
    if verdict.get("shown") and "auc" in verdict:
        return f"shown: AUC {verdict['auc']} {verdict['auc_ci95']} ({verdict.get('verdict', '')})"
    return str(verdict.get("verdict"))


def _run_job(job: Job, cfg: WorkerConfig, owner: str) -> dict:
    """validate, then evaluate into the job's staging folder; the record (run in the helper)."""
    staged = job.dir / "results"
    spec = RunSpec.build(job.target, job.split, scorers=(), results_dir=staged, blind_from=cfg.results_dir,
                         device=cfg.device, progress=False)
    sandbox = dict(log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed)
    report = validate(job.folder, spec, n=cfg.validate_n, owner=owner, **sandbox)
    for c in report["checks"]:
        _log(job, f"validate: {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
    if not report["ok"]:
        raise MembenchError(f"validation failed: {report['error']}")
    shutil.rmtree(staged, ignore_errors=True)
    return evaluate(job.folder, spec, owner=owner, **sandbox)


def process(queue: Queue, job: Job, cfg: WorkerConfig) -> bool:
    """Run one claimed job to its end; True if it was done (and published). Whatever ends the
    job (any exception, ``SystemExit`` and ``KeyboardInterrupt`` included, or the helper's
    death) ends it with one line in its log; the worker goes on."""
    owner = job.owner or MAINTAINERS
    _log(job, f"claimed by {cfg.name} (attempt {job.attempts}); split {job.split}, target {job.target}, "
              f"owner {owner}")
    beat = _Heartbeat(queue, job, cfg.lease_s)
    try:
        # Before anything is loaded: the target and reference models are registry ids of built
        # targets within the helper's budget.
        metadata.check_job(job.folder, job.target, cfg.model_budget)
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
        summary = {"scorer": record["scorer"]["name"], "split": job.split, "target": record["target"]["id"]}
        if is_private(record):  # no figure, no usage count (the scorer chooses those): the verdict comes at publication
            summary["verdict"] = LADDER_PENDING
            _log(job, f"evaluate: scored; {LADDER_PENDING}")
        else:
            m = results.public_view(record)["metrics"]
            summary.update(auc=m["auc"], auc_ci95=m["auc_ci95"], usage=record["usage"])
            _log(job, f"evaluate: AUC {m['auc']} {m['auc_ci95']} on {record['counts']['n_scored']} samples")
        if beat.lost or not queue.finish(job, "done", result=summary):
            _log(job, "lease lost to another worker; not publishing")
            return False
        try:
            written = publish(queue, job.id, cfg)
        except BaseException as exc:  # noqa: BLE001  (refused by the store, a hook that fails: nothing changed)
            queue.refuse_publication(job.id, _failed(job, exc, "not published: "))
            return False
        _log(job, "published: " + ", ".join(shown_path(cfg.results_dir, p) for p in written))
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
    jail_view.check_outside_jail(results=cfg.results_dir, queue=queue.root)  # no folder of ours in the jail's view
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
