"""A host uid of its own for every sandbox run.

Started as root, the harness runs ``bwrap`` (and so the whole sandbox) as a uid no account,
no other run and no file on the machine has: ``UID_BASE + slot``. Two runs, at once or one
after the other in the same second, never share a uid, so even a process that escaped its
namespaces could not signal, trace or write to another run.

A slot is held by binding an abstract Unix socket named for it in the harness's network
namespace: the kernel gives each name to one socket at a time, frees it when the holder
exits (however it exits), and a sandbox, in a network namespace of its own, cannot see it.
"""

from __future__ import annotations

import os
import random
import socket

UID_BASE = 2_100_000_000  # far above any account's uid and below 2**31 - 1
SLOTS = 1 << 16


class NoUid(Exception):
    pass


class UidLease:
    """``with UidLease() as uid:`` a uid no other live run holds."""

    def __init__(self):
        self.uid: int | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> int:
        start = random.randrange(SLOTS)
        for i in range(SLOTS):
            slot = (start + i) % SLOTS
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(f"\0membench-sandbox-uid-{slot}")
            except OSError:
                sock.close()
                continue
            self._sock, self.uid = sock, UID_BASE + slot
            return self.uid
        raise NoUid(f"all {SLOTS} sandbox uids are in use")

    def __exit__(self, *exc) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def problem() -> str | None:
    if os.geteuid() != 0:
        return "a distinct uid per run needs the harness to run as root (it is uid %d)" % os.geteuid()
    return None
