"""Running a planned grid on Ray: one task per job, followed until every job is done or failed.

Ray does the scheduling (a local Ray by default, a cluster when an address is given; one
GPU per job where the cluster has GPUs) and the bounded retries of a job whose worker died
(``max_retries``, the job alone). What the driver adds: it leaves out the jobs the results
store already holds (``plan.finished_records``), follows the jobs through the monitor queue
(started attempts, with the worker's pid and host), shows progress across the grid (jobs
done / running / failed, tokens/s) and returns one report per job.

On a cluster, MEMBENCH_HOME and the results folder must be on a filesystem that the driver
and every node share at the same path (the driver reads the results store to skip finished
jobs; each job writes its own feature cache and result files there).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MembenchError
from ..targets.context import CONTEXT_RULE
from .job import forwarded_env, run_job
from .plan import Job, Plan, finished_records

ADDRESS_HINT = ("give the head node as host:port (GCS, default port 6379) or ray://host:10001 (Ray "
                "Client), start one with `ray start --head`, or leave --ray-address out to run on a "
                "local Ray")
CONNECT_HINT = (ADDRESS_HINT + "; a cluster with token authentication (the default for local Ray "
                "since 2.59) also needs RAY_AUTH_MODE=token here, with its token in RAY_AUTH_TOKEN or "
                "~/.ray/auth_token")


@dataclass
class JobReport:
    """What happened to one job of the grid."""

    job: Job
    status: str  # "done" | "already done" | "failed"
    attempts: int = 0
    seconds: float | None = None
    forward_tokens: int = 0
    aucs: dict = field(default_factory=dict)
    error: str | None = None
    workers: list = field(default_factory=list)  # {"pid", "host"} per attempt

    def as_dict(self) -> dict:
        return {**self.job.as_dict(), "status": self.status, "attempts": self.attempts,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "forward_tokens": self.forward_tokens,
                "tokens_per_s": self.tokens_per_s, "aucs": self.aucs, "error": self.error,
                "workers": self.workers}

    @property
    def tokens_per_s(self) -> float | None:
        if not self.seconds or not self.forward_tokens:
            return None
        return round(self.forward_tokens / self.seconds, 1)


@dataclass
class GridReport:
    jobs: list[JobReport]
    skipped: list[dict]
    seconds: float
    cluster: dict | None = None  # address and resources, when Ray was started

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.jobs)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def as_dict(self) -> dict:
        tokens = sum(r.forward_tokens for r in self.jobs)
        return {
            "jobs": [r.as_dict() for r in self.jobs],
            "skipped": self.skipped,
            "totals": {"jobs": len(self.jobs), "done": self.count("done"),
                       "already_done": self.count("already done"), "failed": self.count("failed"),
                       "retries": sum(max(r.attempts - 1, 0) for r in self.jobs),
                       "skipped_pairs": len(self.skipped), "seconds": round(self.seconds, 3),
                       "forward_tokens": tokens,
                       "tokens_per_s": round(tokens / self.seconds, 1) if self.seconds and tokens else None},
            "cluster": self.cluster,
        }


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[1] if "://" in address else address
    default = 10001 if address.startswith("ray://") else 6379
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon:
        return rest.rstrip("/"), default
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise MembenchError(f"Ray address {address!r} has no valid port", ADDRESS_HINT) from None


def check_address(address: str, timeout: float = 5.0) -> None:
    """One line, within ``timeout`` seconds, when no Ray head answers at ``address`` (Ray
    itself keeps retrying an unreachable address for minutes). ``auto`` (a cluster started on
    this machine) and ``local`` (a new local Ray) are left to Ray."""
    if address in ("auto", "local"):
        return
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MembenchError(f"no Ray cluster answers at {address} ({reason})", ADDRESS_HINT) from None


def _connect(address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray; True when this call started the session
    (and so must end it). An already initialized session (tests) is used as it is."""
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or "local", include_dashboard=False if not address else None,
                 log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as exc:
        raise MembenchError(f"cannot connect to Ray at {address or 'local'}: "
                            f"{(str(exc).splitlines() or [''])[0]}", CONNECT_HINT) from None
    return True


def _local_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _gpus_per_job(requested: float | None, available: float, where: str) -> float:
    if requested is None:
        return 1.0 if available >= 1 else 0.0
    if requested > 0 and available < requested:
        raise MembenchError(
            f"--gpus-per-job {requested:g} asks for a GPU, but {where} has "
            f"{'no GPU' if not available else f'{available:g} GPU(s)'}",
            "pass --gpus-per-job 0 to run the jobs on CPUs, or point --ray-address at a cluster with GPUs",
        )
    return float(requested)


def _error_line(exc: Exception) -> str:
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {(str(cause).splitlines() or [''])[0]}"
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def check_options(*, max_retries: int, cpus_per_job: float, gpus_per_job: float | None) -> None:
    if max_retries < 0:
        raise MembenchError(f"--max-retries must be 0 or more, got {max_retries}", "pass e.g. --max-retries 2")
    if cpus_per_job <= 0:
        raise MembenchError(f"--cpus-per-job must be positive, got {cpus_per_job:g}", "pass e.g. --cpus-per-job 1")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise MembenchError(f"--gpus-per-job must be 0 or more, got {gpus_per_job:g}", "pass 0 or 1")


def run_grid(
    plan: Plan,
    *,
    results_dir: Path,
    ray_address: str | None = None,
    gpus_per_job: float | None = None,
    cpus_per_job: float = 1.0,
    max_retries: int = 2,
    dtype: str = "float32",
    batch_tokens: int = 16384,
    allow_invalid: bool = False,
    reference: str | None = None,
    context_rule: str = CONTEXT_RULE,
    progress: bool = True,
    on_event=None,
) -> GridReport:
    """Run every job of ``plan`` that the results store does not already hold, as Ray tasks.

    ``gpus_per_job`` None: one GPU per job when the cluster has GPUs, else none. A job whose
    worker dies (or that raises anything but an input error) is retried alone, at most
    ``max_retries`` times. ``on_event(kind, job_key, info)`` is called for every attempt's
    start (``"started"``, with the worker's pid and host) and every job's outcome
    (``"done"``/``"failed"``). ``context_rule``: what is scored of a text longer than the
    context (``targets.CONTEXT_RULES``), for every job.
    """
    started = time.time()
    ray_address = None if ray_address == "local" else ray_address
    check_options(max_retries=max_retries, cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job)
    if ray_address:
        check_address(ray_address)
    if not plan.jobs:
        reasons = "; ".join(f"{s['target']} x {s['split']}: {s['reason']}" for s in plan.skipped[:3])
        more = f" (and {len(plan.skipped) - 3} more)" if len(plan.skipped) > 3 else ""
        raise MembenchError(f"the grid has no valid (target, split) pair: {reasons}{more}",
                            "choose targets for which the splits' labels are valid (`membench suite show "
                            "SPLIT`), fetch the splits, or pass --allow-invalid")
    if not ray_address and gpus_per_job:
        _gpus_per_job(gpus_per_job, _local_gpus(), "this machine")
    reports: dict[str, JobReport] = {}
    pending = []
    for job in plan.jobs:
        records = finished_records(job, results_dir, dtype, context_rule)
        if records is None:
            pending.append(job)
        else:
            reports[job.key] = JobReport(job, "already done",
                                         aucs={n: r["metrics"]["auc"] for n, r in records.items()})
    if progress:
        skipped = f"; {len(plan.skipped)} pair(s) skipped (listed at the end)" if plan.skipped else ""
        print(f"grid: {len(plan.jobs)} jobs, {len(plan.jobs) - len(pending)} already done, "
              f"{len(pending)} to run{skipped}", file=sys.stderr)
    cluster = None
    if pending:
        settings = {"results_dir": str(Path(results_dir).resolve()), "dtype": dtype,
                    "batch_tokens": batch_tokens, "allow_invalid": allow_invalid,
                    "reference": reference, "context_rule": context_rule, "env": forwarded_env()}
        cluster = _run_on_ray(pending, reports, settings, ray_address=ray_address, gpus_per_job=gpus_per_job,
                              cpus_per_job=cpus_per_job, max_retries=max_retries, progress=progress,
                              on_event=on_event)
    return GridReport([reports[j.key] for j in plan.jobs], plan.skipped, time.time() - started, cluster)


def _run_on_ray(pending, reports, settings, *, ray_address, gpus_per_job, cpus_per_job, max_retries,
                progress, on_event) -> dict:
    import ray
    from ray.util.queue import Queue

    owned = _connect(ray_address)
    refs: dict = {}
    try:
        resources = ray.cluster_resources()
        where = f"the Ray cluster at {ray_address}" if ray_address else "the local Ray"
        gpus = _gpus_per_job(gpus_per_job, resources.get("GPU", 0.0), where)
        if resources.get("CPU", 0.0) < cpus_per_job:
            raise MembenchError(f"--cpus-per-job {cpus_per_job:g} exceeds the {resources.get('CPU', 0):g} CPU(s) "
                                f"of {where}", "pass a smaller --cpus-per-job")
        settings = {**settings, "gpus": gpus}
        monitor = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(run_job)
        for job in pending:
            ref = task.options(num_cpus=cpus_per_job, num_gpus=gpus, max_retries=max_retries,
                               retry_exceptions=True, name=f"membench-grid {job.key}").remote(job, settings, monitor)
            refs[ref] = job
            reports[job.key] = JobReport(job, "pending")
        _follow(refs, reports, monitor, progress=progress, on_event=on_event)
        return {"address": ray_address or "local", "gpus_per_job": gpus, "cpus_per_job": cpus_per_job,
                "max_retries": max_retries, "resources": {k: v for k, v in resources.items()
                                                          if k in ("CPU", "GPU", "memory")}}
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if owned:
            ray.shutdown()


def _follow(refs: dict, reports: dict, monitor, *, progress: bool, on_event) -> None:
    """Wait for every task, draining start events; keep the progress bar and reports current."""
    import ray
    from tqdm.auto import tqdm

    refs = dict(refs)
    running: set[str] = set()
    tokens, t0 = 0, time.time()
    bar = tqdm(total=len(refs), desc="grid", unit="job", disable=not progress, file=sys.stderr)

    def drain():
        size = monitor.qsize()
        for kind, key, info in (monitor.get_nowait_batch(size) if size else []):
            if kind == "ended":
                running.discard(key)
                continue
            report = reports[key]
            report.attempts += 1
            report.workers.append(info)
            report.status = "running"
            running.add(key)
            if on_event:
                on_event(kind, key, info)

    while refs:
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0.2)
        drain()
        for ref in ready:
            job = refs.pop(ref)
            report = reports[job.key]
            try:
                out = ray.get(ref)
            except ray.exceptions.RayError as exc:
                out = {"status": "failed", "error": _error_line(exc)}
            report.status = out["status"]
            report.error = out.get("error")
            report.seconds = out.get("seconds")
            report.forward_tokens = out.get("forward_tokens", 0)
            report.aucs = out.get("aucs", {})
            tokens += report.forward_tokens
            running.discard(job.key)
            bar.update(1)
            if on_event:
                on_event(report.status, job.key, {"error": report.error} if report.error else {})
        failed = sum(r.status == "failed" for r in reports.values())
        rate = tokens / max(time.time() - t0, 1e-9)
        bar.set_postfix_str(f"running {len(running)}, failed {failed}, {rate:,.0f} tok/s", refresh=False)
    bar.close()
