"""Where a run's time goes: named phases, per model, switched on by `membench bench --profile`.

Code marks its work with ``with phase("forward", model=target.id):``. Outside a profile that
costs one context-variable lookup; inside one (``with Profile() as p:``) the wall time of each
phase is added to ``p.seconds[(phase, model)]``. Phases nest: an inner phase's time is taken
out of the phase around it, so the phases of a run add up to at most its wall time and never
count a second twice. On a GPU the caller passes ``sync`` (``torch.cuda.synchronize``) so that
asynchronous kernels are charged to the phase that launched them.

``run_profiled(argv)`` runs ``membench --profile-to OUT.json ARGV...`` in a fresh process: the
command line runs the command under a profile (``profiled``) and writes ``{"startup_s",
"wall_s", "phases": [...]}`` to OUT.json; ``membench bench --profile`` uses it to time real
runs, start-up included.
"""

from __future__ import annotations

import contextvars
import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import MembenchError

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


# torch and transformers load with the model, in the ``loading`` phase; the harness's own
# modules load with the command line, in start-up.
WATCHED_MODULES = ("torch", "transformers", "sklearn", "scipy", "pandas")


def run_profiled(argv: list[str]) -> dict:
    """Run ``membench ARGV...`` in a fresh process under a profile; its phases, start-up, the
    wall time of the whole process (``process_s``, exit included) and which heavy modules it
    imported. A failing command is a ``MembenchError`` quoting its last line."""
    with tempfile.TemporaryDirectory(prefix="membench-profile-") as tmp:
        out = Path(tmp) / "profile.json"
        launched = time.time()  # the interpreter's start and the imports count as start-up
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "benchmark", "--profile-to", str(out), "--profile-launched",
                               repr(launched), *argv], capture_output=True, text=True)
        process = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise MembenchError(f"profiled command `membench {' '.join(argv)}` failed: {last}")
        payload = json.loads(out.read_text())
    payload["process_s"] = round(process, 4)
    return payload


def time_process(argv: list[str]) -> float:
    """Wall time of ``membench ARGV...`` as a fresh process (e.g. ``--help``)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmark", *argv], capture_output=True, check=False)
    return time.perf_counter() - started


def profiled(command, out: str, launched: float | None, argv: list[str]) -> int:
    """Run ``command()`` (the command line's ``argv``) under a profile and write its phases to
    ``out``; ``launched`` (``time.time()`` of the parent when it started this process) makes the
    interpreter's start and the imports count as start-up."""
    with Profile() as profile:
        entered = time.time()
        started = time.perf_counter()
        code = command()
        wall = time.perf_counter() - started
    startup = entered - launched if launched is not None else 0.0
    payload = {"command": list(argv), "exit_code": code, "startup_s": round(startup, 4),
               "wall_s": round(startup + wall, 4), "phases": profile.rows(),
               "imported": {m: m in sys.modules for m in WATCHED_MODULES}}
    with open(out, "w") as fh:
        json.dump(payload, fh, indent=2)
    return code
