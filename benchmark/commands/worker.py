"""`membench worker`: process queued submissions one at a time (validate, evaluate, publish)."""

from __future__ import annotations

from pathlib import Path

from .. import site
from ..results import gate
from ..home import results_dir as default_results_dir
from ..submissions.guards import ModelBudget
from ..submissions.queue import Queue
from ..submissions.worker import WorkerConfig, serve
from . import emit
from .validate import add_sandbox_args, limits_from


def register(sub):
    p = sub.add_parser("worker", help="process queued submissions: validate, evaluate, publish, rebuild the site")
    p.add_argument("--queue", type=Path, default=None, help="queue folder (default: $MEMBENCH_HOME/queue)")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where results are published (default: $MEMBENCH_HOME/results, the folder `run`, "
                   "`evaluate` and the site use)")
    p.add_argument("--site-out", type=Path, default=None, help="site to rebuild (default: leaderboard_site/build)")
    p.add_argument("--no-site", action="store_true",
                   help="publish results (through the publication gate) without rebuilding the site")
    p.add_argument("--lease", type=float, default=60.0, help="seconds a claim lasts without a heartbeat")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue")
    p.add_argument("--exit-when-empty", action="store_true", help="stop when no job is pending")
    p.add_argument("--max-jobs", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model-memory-mb", type=int, default=ModelBudget.memory_mb,
                   help="address space of each job's helper process, which loads the models; a target or "
                   "reference whose weights (from its config's shapes) would not fit is refused before loading "
                   "(default: %(default)s)")
    add_sandbox_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON summary at the end")
    p.set_defaults(func=handle)


def publish_hook(out: Path | None):
    """The worker's publish hook: the publication gate on the record files just written
    (``gate.publish``: it recomputes them, writes what pages need and the Ladder's decision on a
    private split), then, unless ``out`` is None, the site rebuilt at ``out`` from the gated folder."""

    def hook(results_dir: Path, written: list[Path]) -> None:
        gate.publish(results_dir, only=written)
        if out is not None:
            site.build(results_dir, out)

    return hook


def handle(args) -> int:
    queue = Queue(args.queue)
    cfg = WorkerConfig(
        results_dir=args.results_dir or default_results_dir(),
        on_publish=publish_hook(None if args.no_site else args.site_out or site.DEFAULT_OUT),
        lease_s=args.lease,
        poll_s=args.poll,
        limits=limits_from(args),
        allow_unsandboxed=args.allow_unsandboxed,
        device=args.device,
        model_budget=ModelBudget(memory_mb=args.model_memory_mb),
    )

    def report(job, ok):
        if not args.json:
            state = queue.get(job.id, with_log=False)
            print(f"job {job.id} ({job.name or '?'}): {state['status']}"
                  + (f": {state['error']}" if state["error"] else ""), flush=True)

    if not args.json:
        print(f"worker {cfg.name} serving {queue.root} -> {cfg.results_dir}", flush=True)
    n = serve(queue, cfg, exit_when_empty=args.exit_when_empty, max_jobs=args.max_jobs, on_job=report)
    emit(args, {"processed": n, "queue": queue.counts()}, f"processed {n} job(s); queue: {queue.counts()}")
    return 0
