"""How the `membench` program ends: ``exit_now``, without the interpreter's teardown."""

from __future__ import annotations

import atexit
import os
import sys
import threading


def exit_now(code: int) -> None:
    """End the process with ``code`` without the interpreter's teardown.

    After a run has imported torch and transformers, Python's own exit spends over a second
    freeing their modules (1.2 s on the 2-core machine: a tenth of a cold demo run) before the
    process can end. Everything that exit does for us is done here first, in the interpreter's
    own order: non-daemon threads are joined (``threading._shutdown``, which also stops idle
    executors), every ``atexit`` handler runs (temporary folders, Ray, logging, the jail's
    view), and the standard streams are flushed; only then does ``os._exit`` skip the freeing.
    Files are never left half-written by it: membench writes files through ``with`` blocks and
    atomic renames, closed before a command returns. Under a profiler or a coverage tool (which
    write their data at the ordinary exit) the exit is the ordinary one."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    else:  # pragma: no cover - every CPython since 3.4 has it
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)


def status_of(command, *args) -> int:
    """The exit status ``command(*args)`` ends the process with: its return value, or the code of
    a ``SystemExit`` it raised (``--help``, a usage error); an exit message is printed and gives
    1, as Python's own exit does."""
    try:
        return int(command(*args) or 0)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
