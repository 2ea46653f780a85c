"""Where a run's time goes: named phases, per model, switched on by `membench bench --profile`.

Code marks its work with ``with phase("forward", model=target.id):``. Outside a profile that
costs one context-variable lookup; inside one (``with Profile() as p:``) the wall time of each
phase is added to ``p.seconds[(phase, model)]``. Phases nest: an inner phase's time is taken
out of the phase around it, so the phases of a run add up to at most its wall time and never
count a second twice. On a GPU the caller passes ``sync`` (``torch.cuda.synchronize``) so that
asynchronous kernels are charged to the phase that launched them.

``python -m benchmark.profiling OUT.json COMMAND ...`` runs one ``membench`` command in a fresh
process under a profile and writes ``{"startup_s", "wall_s", "phases": [...]}`` to OUT.json;
``membench bench --profile`` uses it to time real runs, start-up included.
"""

from __future__ import annotations

import contextvars
import json
import sys
import time
from contextlib import contextmanager

# The phases of a run, in pipeline order (``other`` is what no phase claimed).
PHASES = ("start-up", "loading", "tokenization", "forward", "statistics", "scoring", "metrics", "writing")

_active: contextvars.ContextVar = contextvars.ContextVar("membench_profile", default=None)


class Profile:
    def __init__(self):
        self.seconds: dict[tuple[str, str | None], float] = {}
        self._stack: list[list[float]] = []  # per open phase: [child seconds]
        self._token = None

    def __enter__(self) -> "Profile":
        self._token = _active.set(self)
        return self

    def __exit__(self, *exc) -> None:
        _active.reset(self._token)

    def add(self, name: str, model: str | None, seconds: float) -> None:
        key = (name, model)
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def rows(self) -> list[dict]:
        """One row per (phase, model), in ``PHASES`` order then by model."""
        order = {p: i for i, p in enumerate(PHASES)}
        keys = sorted(self.seconds, key=lambda k: (order.get(k[0], len(order)), k[0], k[1] or ""))
        return [{"phase": k[0], "model": k[1], "seconds": round(self.seconds[k], 4)} for k in keys]


@contextmanager
def phase(name: str, model: str | None = None, sync=None):
    """Charge the enclosed wall time (less nested phases) to ``name`` for ``model``."""
    profile = _active.get()
    if profile is None:
        yield
        return
    if sync is not None:
        sync()
    profile._stack.append([0.0])
    started = time.perf_counter()
    try:
        yield
    finally:
        if sync is not None:
            sync()
        spent = time.perf_counter() - started
        children = profile._stack.pop()[0]
        profile.add(name, model, spent - children)
        if profile._stack:
            profile._stack[-1][0] += spent


# Modules a command imports lazily before it does any work (torch and transformers are not
# among them: they load with the model, in the ``loading`` phase).
PRELOAD = {"run": "benchmark.evaluate", "evaluate": "benchmark.submissions.evaluation"}
WATCHED_MODULES = ("torch", "transformers", "sklearn", "scipy", "pandas")


def run_profiled(argv: list[str], engine: bool = False) -> dict:
    """Run ``membench ARGV...`` in a fresh process under a profile; its phases, start-up, the
    wall time of the whole process (``process_s``, exit included) and which heavy modules it
    imported. With ``engine``, the process hands the command to the running engine
    (``benchmark.engine``) as `membench run` would, and the phases are those of the engine's
    child (start-up: from this process's launch to the child's command). A failing command is a
    ``MembenchError`` quoting its last line."""
    import subprocess
    import tempfile
    from pathlib import Path

    from .errors import MembenchError

    with tempfile.TemporaryDirectory(prefix="membench-profile-") as tmp:
        out = Path(tmp) / "profile.json"
        launched = time.time()
        started = time.perf_counter()
        module = "benchmark.engine.client" if engine else "benchmark.profiling"  # the former hands it over
        proc = subprocess.run([sys.executable, "-m", module, str(out), repr(launched), "--", *argv],
                              capture_output=True, text=True)
        process = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise MembenchError(f"profiled command `membench {' '.join(argv)}` failed: {last}")
        payload = json.loads(out.read_text())
    payload["process_s"] = round(process, 4)
    return payload


def time_process(argv: list[str]) -> float:
    """Wall time of ``membench ARGV...`` as a fresh process (e.g. ``--help``)."""
    import subprocess

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmark", *argv], capture_output=True, check=False)
    return time.perf_counter() - started


def main(argv=None) -> int:
    """``python -m benchmark.profiling OUT.json [START_TIME] -- COMMAND ...``: one membench
    command under a profile. START_TIME (``time.time()`` of the parent when it started this
    process) makes the interpreter's start and the imports count as start-up."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out, rest = argv[0], argv[1:]
    launched = float(rest.pop(0)) if rest and rest[0] != "--" else None
    if rest and rest[0] == "--":
        rest = rest[1:]
    import importlib

    from .cli import main as cli_main

    if rest and rest[0] in PRELOAD:  # the harness's own imports are start-up, not work
        importlib.import_module(PRELOAD[rest[0]])
    with Profile() as profile:
        entered = time.time()
        started = time.perf_counter()
        code = cli_main(rest)
        wall = time.perf_counter() - started
    startup = entered - launched if launched is not None else 0.0
    payload = {"command": rest, "exit_code": code, "startup_s": round(startup, 4),
               "wall_s": round(startup + wall, 4), "phases": profile.rows(),
               "imported": {m: m in sys.modules for m in WATCHED_MODULES}}
    with open(out, "w") as fh:
        json.dump(payload, fh, indent=2)
    return code


if __name__ == "__main__":
    # Run as ``python -m``, this file is ``__main__``; the harness imports it as
    # ``benchmark.profiling``, whose context variable is the one that must be set.
    from benchmark.exiting import exit_now
    from benchmark.profiling import main as _main

    exit_now(_main())  # ends the way the `membench` program does
