"""The worker: takes queued submissions one at a time, validates, evaluates, publishes.

At start it sweeps what a killed harness left (sandbox scratch folders, snapshots, run
cgroups). For each job: ``validate`` (every check, in the sandbox), then ``evaluate`` on the
job's split into the job's own staging folder (both through the one evaluator, with the job's
``RunSpec``; ``evaluate`` runs the scorer twice on everything it scores), then the name check
(a name belongs to the owner that first published it; no record of another owner or kind is
ever replaced), then ``Queue.finish`` (only the holder of the job's current lease token can),
then publication: each staged result goes through ``results.write`` into the published results
folder, and the publish hook the worker was given (``WorkerConfig.on_publish``, called with the
folder and the files written: the command line's runs the publication gate on those files,
``results.gate.publish``, then rebuilds the site) runs on them. The worker never imports the
site. A job that is done but not yet published (the worker died in between) is published by
the next worker that starts. Any fault of the scorer fails its job with one clear line in the
job log, and the worker goes on serving.

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
from . import jail, safe_text
from .sandboxed import evaluate, validate
from .folder import sweep_dead
from .jail import Limits
from .joblog import harness_line
from .queue import MAINTAINERS, Job, Queue

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    """``on_publish``: called with the published results folder and the record files just
    written after each publication (the command line passes the publication gate on those files
    followed by a site rebuild; None: publish the results only)."""

    results_dir: Path
    on_publish: Callable[[Path, list[Path]], None] | None = None
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
    shown = safe_text.one_line(name, 64)
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
    """Copy a done job's staged results into the published folder (through the results store,
    which validates them), run the publish hook on the files written, and tell the job's owner
    the Ladder's verdict on a private split's record. Idempotent."""
    staged = queue.job_dir(job_id) / "results"
    written = []
    for path, record in results.iter_records(staged):
        scores = pd.read_parquet(path.with_name(record["per_sample"]["file"]))
        columns = {c: scores[c].to_numpy() for c in scores.columns if c not in ("uid", "score")}  # e.g. truncated
        written.append(Path(results.write(cfg.results_dir, record, scores["uid"].tolist(), scores["score"].to_numpy(),
                                          columns=columns)))
    if cfg.on_publish is not None:
        cfg.on_publish(cfg.results_dir, written)
    told = verdicts(written)
    for verdict in told:
        harness_line(queue.job_dir(job_id) / "job.log", "ladder: " + _verdict_line(verdict))
    queue.mark_published(job_id, verdict=told[0] if told else None)
    return written


def _verdict_line(verdict: dict) -> str:
    if verdict.get("shown") and "auc" in verdict:
        return f"shown: AUC {verdict['auc']} {verdict['auc_ci95']} ({verdict.get('verdict', '')})"
    return str(verdict.get("verdict"))


def process(queue: Queue, job: Job, cfg: WorkerConfig) -> bool:
    """Run one claimed job to its end; True if it was done (and published)."""
    owner = job.owner or MAINTAINERS
    _log(job, f"claimed by {cfg.name} (attempt {job.attempts}); split {job.split}, target {job.target}, "
              f"owner {owner}")
    beat = _Heartbeat(queue, job, cfg.lease_s)
    beat.start()
    try:
        staged = job.dir / "results"
        spec = RunSpec.build(job.target, job.split, scorers=(), results_dir=staged, blind_from=cfg.results_dir,
                             device=cfg.device, progress=False)
        sandbox = dict(log_path=job.log_path, limits=cfg.limits, allow_unsandboxed=cfg.allow_unsandboxed)
        report = validate(job.folder, spec, n=cfg.validate_n, **sandbox)
        for c in report["checks"]:
            _log(job, f"validate: {'ok  ' if c['ok'] else 'FAIL'} {c['check']}: {c['detail']}")
        if not report["ok"]:
            raise MembenchError(f"validation failed: {report['error']}")
        shutil.rmtree(staged, ignore_errors=True)
        record = evaluate(job.folder, spec, owner=owner, **sandbox)
        check_name(queue, cfg, record["scorer"]["name"], owner)
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
        except MembenchError as exc:  # refused by the results store (e.g. a name taken meanwhile)
            error = safe_text.one_line(exc, 1000)
            queue.refuse_publication(job.id, error)
            _log(job, f"FAILED: not published: {error}")
            return False
        _log(job, "published: " + ", ".join(shown_path(cfg.results_dir, p) for p in written))
        return True
    except MembenchError as exc:
        error = safe_text.one_line(exc, 1000)
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
                queue.refuse_publication(job_id, safe_text.one_line(exc, 1000))

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
