"""Progress of long builds (training a target, fine-tuning): one bar, and hooks.

``record_timing(step, seconds)`` / ``last_timing(step)`` keep how long each build step took
last time in this home (``home.timings_file``), so a plan can say what to expect.

``bar(total, desc, enabled)`` is a tqdm bar whose every ``update`` also calls each function in
``HOOKS`` with ``(desc, done, total)``. A hook may raise to stop the build where it is (tests
interrupt a build this way and check that it leaves nothing that looks built).
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

from .home import timings_file

HOOKS: list[Callable[[str, int, int], None]] = []


class Bar:
    def __init__(self, total: int, desc: str, enabled: bool = True):
        from tqdm.auto import tqdm

        self.total, self.desc, self.done = total, desc, 0
        self._bar = tqdm(total=total, desc=desc, disable=not enabled)

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        for hook in list(HOOKS):
            hook(self.desc, self.done, self.total)

    def set_postfix(self, **kwargs) -> None:
        self._bar.set_postfix(**kwargs)

    def close(self) -> None:
        self._bar.close()


def bar(total: int, desc: str, enabled: bool = True) -> Bar:
    return Bar(total, desc, enabled)


def _timings() -> dict:
    try:
        return json.loads(timings_file().read_text())
    except (OSError, ValueError):
        return {}


def record_timing(step: str, seconds: float) -> None:
    """Remember that ``step`` (e.g. "target demo/neox-tiny") took ``seconds`` here."""
    data = _timings()
    data[step] = {"seconds": round(float(seconds), 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = timings_file()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def last_timing(step: str) -> float | None:
    """Seconds ``step`` took the last time it ran in this home, or None."""
    entry = _timings().get(step)
    return float(entry["seconds"]) if isinstance(entry, dict) and "seconds" in entry else None


def duration(seconds: float | None) -> str:
    """``"7 min 12 s"``, ``"41 s"``; "not timed in this home yet" for None."""
    if seconds is None:
        return "not timed in this home yet"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
