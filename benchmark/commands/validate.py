"""`membench validate PATH`: check a submission folder before submitting it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import MembenchError
from ..evaluate import RunSpec
from ..submissions import Limits, validate
from . import emit, table


def add_sandbox_args(p) -> None:
    d = Limits()
    p.add_argument("--memory-mb", type=int, default=d.memory_mb, help="memory limit of the whole run (MiB)")
    p.add_argument("--disk-mb", type=int, default=d.disk_mb, help="size of the run's only writable folder (MiB)")
    p.add_argument("--cpu-s", type=int, default=d.cpu_s, help="CPU-time limit (s)")
    p.add_argument("--timeout", type=float, default=d.wall_s, help="wall-clock limit per run (s)")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="where a piece of the jail is missing (bwrap, seccomp, cgroup, a uid per run), run "
                        "with the pieces that are there (never for untrusted code)")


def limits_from(args):
    return Limits(memory_mb=args.memory_mb, disk_mb=args.disk_mb, cpu_s=args.cpu_s, wall_s=args.timeout)


def register(sub):
    p = sub.add_parser("validate", help="check a submission: metadata, sandboxed run, determinism, output")
    p.add_argument("path", type=Path, help="submission folder (scorer.py + submission.yaml)")
    p.add_argument("--split", default="demo/pydoc", help="split to take the small sample from")
    p.add_argument("--target", default="demo/neox-tiny")
    p.add_argument("-n", type=int, default=64, help="samples in the validation run")
    p.add_argument("--log", type=Path, default=None, help="file for the scorer's stdout/stderr")
    p.add_argument("--device", default="cpu")
    p.add_argument("--allow-invalid", action="store_true", help="run a pair outside label validity")
    p.add_argument("--calibration", default=None, metavar="SUBSET",
                   help="for a submission that declares `fit`: the declared calibration subset it fits on (rows of "
                   "that subset only; default: cal10, as `evaluate`)")
    add_sandbox_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=handle)


def handle(args) -> int:
    spec = RunSpec.build(args.target, args.split, scorers=(), device=args.device, allow_invalid=args.allow_invalid,
                         calibration=args.calibration, progress=False)
    log = args.log or Path(tempfile.mkdtemp(prefix="membench-validate-")) / "scorer.log"
    report = validate(args.path, spec, n=args.n, log_path=log, limits=limits_from(args),
                      allow_unsandboxed=args.allow_unsandboxed)
    report["log"] = str(log)
    rows = [["ok" if c["ok"] else "FAIL", c["check"], c["detail"]] for c in report["checks"]]
    text = table(rows, ["", "check", "detail"]) + "".join(f"\nwarning: {w}" for w in report["warnings"])
    text += f"\nscorer log: {log}"
    emit(args, report, text)
    if not report["ok"]:
        raise MembenchError(report["error"])  # the CLI prints it as one line and exits 2
    return 0
