"""The CPU priority (niceness) of the grid's workers, stated and settable (`membench grid --priority`).

Ray starts its workers at niceness 15 by default (``worker_niceness`` in Ray's config: the OS
serves every other process on the machine first), which on a shared machine is kind and on a
dedicated one only slows the grid. The grid passes the chosen niceness to a local Ray it starts
(``RAY_worker_niceness``) and every job also sets it for its own process, so the value holds on
a cluster too where it lowers the priority; raising it (a niceness below the worker's) needs
privileges, and a job that cannot do so runs at the niceness it has and reports it.
"""

from __future__ import annotations

import os

from ..errors import MembenchError

RAY_DEFAULT = 15  # Ray's own worker_niceness
RAY_ENV = "RAY_worker_niceness"


def check(niceness: int) -> int:
    if not 0 <= niceness <= 19:
        raise MembenchError(f"--priority must be a niceness from 0 (normal) to 19 (lowest), got {niceness}",
                            f"pass e.g. --priority 0 on a dedicated machine, or leave it at {RAY_DEFAULT} (Ray's default)")
    return niceness


def describe(niceness: int) -> str:
    kind = ("normal priority" if niceness == 0 else "lowest priority" if niceness == 19 else
            "below normal priority: other processes on the machine come first")
    default = " (Ray's default)" if niceness == RAY_DEFAULT else ""
    return f"grid workers run at niceness {niceness}{default}, {kind}; set it with --priority N (0-19)"


def apply(niceness: int | None) -> int:
    """Set this process's niceness to ``niceness`` where allowed; return the niceness in effect."""
    current = os.nice(0)
    if niceness is None or niceness == current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except (PermissionError, OSError):
        return os.nice(0)
    return os.nice(0)
