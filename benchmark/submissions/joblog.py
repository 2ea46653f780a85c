"""The job log: the harness's own lines kept apart from what a scorer prints.

A scorer's stdout and stderr reach the log only through ``ScorerOutput``, which reads the
sandbox's pipe in a thread (the scorer never blocks on a full pipe and never holds the log
file), cuts it into lines, replaces control characters and prefixes every line with
``SCORER_PREFIX``; past ``limit`` bytes per run the rest is counted and dropped. The harness
writes its lines with ``harness_line`` (a timestamp in brackets). A scorer can therefore never
start a line, move the cursor, or write a line that reads as the harness's.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from . import guards, safe_text

SCORER_PREFIX = "scorer| "
MAX_LINE = 2000


def harness_line(path: Path, line: str) -> None:
    """Append one harness line (timestamped) to the log at ``path``; newlines in ``line`` are
    kept apart as continuation lines, so a message cannot forge a line either."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    parts = guards.scrub_paths(line).splitlines() or [""]  # no host path reaches a submitter
    text = f"[{stamp}] {safe_text.one_line(parts[0], 8000)}\n" + "".join(
        f"    {safe_text.one_line(p, 8000)}\n" for p in parts[1:])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


class ScorerOutput(threading.Thread):
    """Copy a scorer's output pipe into the log, sanitized, until the pipe closes."""

    def __init__(self, fd: int, path: Path, limit: int):
        super().__init__(daemon=True, name="scorer-output")
        self.fd, self.path, self.limit = fd, Path(path), limit
        self.logged = 0
        self.dropped = 0

    def run(self) -> None:
        pending = b""
        with open(self.path, "a", encoding="utf-8") as log:
            while True:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_LINE:  # a line with no end: cut it
                    lines.append(pending)
                    pending = b""
                self._write(log, lines)
            if pending:
                self._write(log, [pending])
            if self.dropped:
                log.write(f"{SCORER_PREFIX}[{self.dropped} more bytes of scorer output not kept: the log keeps "
                          f"{self.limit >> 10} KiB per run]\n")

    def _write(self, log, lines) -> None:
        for raw in lines:
            if self.logged >= self.limit:
                self.dropped += len(raw) + 1
                continue
            self.logged += len(raw) + 1
            text = safe_text.one_line(raw.decode("utf-8", errors="replace").rstrip("\r"), MAX_LINE)
            log.write(f"{SCORER_PREFIX}{text}\n")
        log.flush()


def tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of the log, starting at a whole line (a cut line could
    otherwise begin with text that reads as a harness line)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    if len(text) <= limit:
        return text
    text = text[-limit:]
    return text[text.find("\n") + 1 :]
