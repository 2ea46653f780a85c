"""`membench engine start|stop|status`: a warm engine for `membench run` (``benchmark.engine``)."""

from __future__ import annotations

import time

from . import emit


def register(sub):
    p = sub.add_parser(
        "engine", help="a warm engine for `membench run`: start, stop, status",
        description="`membench engine start` keeps a server with torch and transformers imported for this "
        "MEMBENCH_HOME; every `membench run` started afterwards in the same environment runs in a fresh child "
        "of it and skips those imports (2.6 s of a 8.2 s cold demo run, measured). Results are identical with and without it. "
        "A run whose environment, interpreter or library files differ from the engine's runs on its own as "
        "always (-v says why); MEMBENCH_ENGINE=off skips the engine.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("start", help="start the engine (returns when it is ready)")
    s.add_argument("--idle-minutes", type=float, default=60.0, help="exit after this long without a request")
    s.add_argument("--json", action="store_true")
    for name, text in (("stop", "stop the engine (a run in progress is killed)"),
                       ("status", "whether an engine runs, and whether `membench run` here would use it")):
        a = actions.add_parser(name, help=text)
        a.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from .. import engine

    if args.action == "start":
        out = engine.start(args.idle_minutes)
        emit(args, out, f"engine started (pid {out['pid']}, ready in {out['seconds']:.1f} s; log {out['log']}); "
             "`membench run` in this environment now uses it" if out["started"]
             else f"the engine is already running (pid {out['pid']})")
    elif args.action == "stop":
        info = engine.stop()
        emit(args, {"stopped": info is not None, "pid": info and info["pid"]},
             "no engine is running" if info is None else f"engine stopped (pid {info['pid']}, {info['served']} runs served)")
    else:
        info = engine.ping()
        if info is None:
            emit(args, {"running": False}, "no engine is running (start one with `membench engine start`)")
            return 0
        why = engine.usable_here(info)
        payload = {"running": True, "pid": info["pid"], "served": info["served"], "running_now": info["running"],
                   "uptime_s": round(time.time() - info["started"], 1), "preload_s": info["preload_s"],
                   "usable_here": why is None, "why_not": why}
        emit(args, payload, f"engine pid {info['pid']}: up {payload['uptime_s']:.0f} s, {info['served']} runs served, "
             f"{info['running']} running; `membench run` here " + ("uses it" if why is None else f"does not use it ({why})"))
    return 0
