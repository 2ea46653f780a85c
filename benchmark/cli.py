"""`membench ...`: the command line. Each command lives in ``benchmark/commands/<name>.py``.

A command module defines ``register(subparsers)`` which adds its parser and sets
``func=handler``. Handlers return an exit code. Errors caused by input are raised as
``MembenchError`` and printed as one line (exit 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .errors import MembenchError

# In the order of the pipeline: data, scoring, diagnostics, publishing, submissions.
COMMANDS = (
    "demo", "suite", "targets", "finetune", "run", "bench", "diagnose", "cards",
    "results", "leaderboard", "serve", "validate", "evaluate", "worker",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other input error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="membench",
        description="Benchmark membership-inference attacks on language models.",
    )
    parser.add_argument("--version", action="version", version=f"membench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="membench: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MembenchError as exc:
        print(f"membench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("membench: interrupted; what was cached is kept and will be reused", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
