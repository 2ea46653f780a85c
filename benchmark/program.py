"""The `membench` program (``python -m benchmark`` too): a command the warm engine can take goes
to it (``benchmark.engine``: only when it would run there exactly as here); otherwise the
command line (``benchmark.cli``) runs in this process. Then a quick exit (``exiting``)."""

from __future__ import annotations

import sys

from .cli import main
from .engine import delegate
from .exiting import exit_now, status_of


def entry() -> None:
    """An uncaught exception takes Python's ordinary exit, traceback and all."""
    code = delegate(sys.argv[1:])
    exit_now(code if code is not None else status_of(main))
