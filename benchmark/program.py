"""The `membench` program (``python -m benchmark`` too): a command the warm engine can take goes
to it (``benchmark.engine``: only when it would run there exactly as here); otherwise the
command line (``benchmark.cli``) runs in this process. Then a quick exit (``exiting``)."""

from __future__ import annotations

import sys

from .cli import main
from .engine import delegate
from .exiting import exit_now


def entry() -> None:
    """A ``SystemExit`` with an integer code (``--help``, a usage error) exits the quick way too;
    anything else (an uncaught exception, an exit message) takes Python's ordinary exit,
    traceback and all."""
    code = delegate(sys.argv[1:])
    if code is not None:
        exit_now(code)
    try:
        code = main()
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    exit_now(code)
