"""The worker: takes queued submissions one at a time, validates, evaluates, publishes.

At start it sweeps what a killed harness left (sandbox scratch folders, snapshots, run
cgroups). For each job: ``validate`` (every check, in the sandbox), then ``evaluate`` on the
job's split into the job's own staging folder, then the name check (a name belongs to the
owner that first published it; no record of another owner or kind is ever replaced), then
``Queue.finish`` (only the holder of the job's current lease token can), then publication:
each staged result goes through ``results.write`` into the published results folder and the
site is rebuilt. A job that is done but not yet published (the worker died in between) is
published by the next worker that starts. Any fault of the scorer fails its job with one
clear line in the job log, and the worker goes on serving.
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

from ..errors import MembenchError
from ..home import scratch_dir
from ..results import public_view
from ..results.published import LADDER_PENDING, is_private
from . import jail, untrusted
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


def _log(job: Job, line: str) -> None:
    harness_line(job.log_path, line)


def owners_of(results_dir: Path, name: str) -> set[tuple[str, str]]:
    """(kind, owner) of every published record named ``name`` (a light read: the scorer
    block of each JSON file, no schema or hash check)."""
    import json

    out = set()
    root = Path(results_dir)
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
        for fn in filenames:
            if not fn.endswith(".json"):
                continue
            try:
                scorer = json.loads((Path(dirpath) / fn).read_text()).get("scorer") or {}
            except (OSError, ValueError, AttributeError):
                continue
            if scorer.get("name") == name:
                out.add((str(scorer.get("kind")), str(scorer.get("owner") or MAINTAINERS)))
    return out


def check_name(queue: Queue, cfg: "WorkerConfig", name: str, owner: str) -> None:
    """Refuse to publish ``name`` for ``owner`` when another owner (or a built-in, a blind
    baseline) holds it; otherwise record ``owner`` as the name's owner."""
    shown = untrusted.one_line(name, 64)
    others = {(k, o) for k, o in owners_of(cfg.results_dir, name) if (k, o) != ("submission", owner)}
    if any(k != "submission" for k, _ in others):
        raise MembenchError(f"the name '{shown}' is already published by the maintainers as a built-in or a baseline",
                            "choose another name in submission.yaml")
    held = queue.claim_name(name, owner) if not others else sorted(others)[0][1]
    if held is not None:
        raise MembenchError(f"the name '{shown}' belongs to another submitter (the first to publish it)",
                            "choose another name in submission.yaml")


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
    which validates them) and rebuild the site. Idempotent."""
    from .. import results

    staged = queue.job_dir(job_id) / "results"
    written = []
    for path, record in results.iter_records(staged):
        scores = pd.read_parquet(path.with_name(record["per_sample"]["file"]))
        columns = {c: scores[c].to_numpy() for c in scores.columns if c not in ("uid", "score")}  # e.g. truncated
        out = results.write(cfg.results_dir, record, scores["uid"].tolist(), scores["score"].to_numpy(), columns=columns)
        written.append(str(out))
    if cfg.site_out is not None:
        from .. import site

        site.build(cfg.results_dir, cfg.site_out)
    queue.mark_published(job_id)
    return written


def process(queue: Queue, job: Job, cfg: WorkerConfig) -> bool:
    """Run one claimed job to its end; True if it was done (and published)."""
    owner = job.owner or MAINTAINERS
    _log(job, f"claimed by {cfg.name} (attempt {job.attempts}); split {job.split}, target {job.target}, "
              f"owner {owner}")
    beat = _Heartbeat(queue, job, cfg.lease_s)
    beat.start()
    try:
        report = validate(job.folder, split_id=job.split, target_id=job.target, n=cfg.validate_n,
                          log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed,
                          device=cfg.device)
        for c in report["checks"]:
            _log(job, f"validate: {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
        if not report["ok"]:
            raise MembenchError(f"validation failed: {report['error']}")
        staged = job.dir / "results"
        shutil.rmtree(staged, ignore_errors=True)
        record = evaluate(job.folder, split_id=job.split, target_id=job.target, results_dir=staged,
                          log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed,
                          device=cfg.device, blind_from=cfg.results_dir, owner=owner)
        check_name(queue, cfg, record["scorer"]["name"], owner)
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
        except MembenchError as exc:  # refused by the results store (e.g. a name taken meanwhile)
            error = untrusted.one_line(exc, 1000)
            queue.refuse_publication(job.id, error)
            _log(job, f"FAILED: not published: {error}")
            return False
        _log(job, f"published: {', '.join(written)}")
        return True
    except MembenchError as exc:
        error = untrusted.one_line(exc, 1000)
        _log(job, f"FAILED: {error}")
        queue.finish(job, "failed", error=error)
        return False
    except Exception as exc:  # noqa: BLE001  (a harness bug must not stop the worker)
        _log(job, "FAILED (internal error): " + "".join(traceback.format_exception(exc))[-4000:])
        queue.finish(job, "failed", error=f"internal error: {type(exc).__name__}: {exc}")
        return False
    finally:
        beat.stop.set()


def serve(queue: Queue, cfg: WorkerConfig, *, exit_when_empty: bool = False, max_jobs: int | None = None,
          stop: threading.Event | None = None, on_job=None) -> int:
    """Take jobs until stopped (or, with ``exit_when_empty``, until nothing is pending or
    running: a job another worker holds may still come back when its lease expires); return
    the number of jobs this worker processed."""
    stop = stop or threading.Event()
    swept = {**jail.sweep(), "snapshots": sweep_dead(scratch_dir("snapshots"))}
    if any(swept.values()):
        log.warning("removed what a stopped harness left behind: %s", swept)

    def catch_up():
        for job_id in queue.unpublished():
            log.warning("publishing job %s, finished by a worker that stopped before publishing", job_id)
            try:
                publish(queue, job_id, cfg)
            except MembenchError as exc:  # e.g. the name was taken meanwhile: never retried forever
                queue.refuse_publication(job_id, untrusted.one_line(exc, 1000))

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
