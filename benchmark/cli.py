"""`membench ...`: the command line. Each command lives in ``benchmark/commands/<name>.py``.

A command module defines ``register(subparsers)`` which adds its parser and sets
``func=handler``. Handlers return an exit code. Errors caused by input are raised as
``MembenchError`` and printed as one line (exit 2), never as a traceback; with ``--json`` the
error is one JSON object on stderr (``{"error", "hint", "exit_code"}``). Every option's help
shows its default (``_Formatter``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__, profiling
from .commands import (bench, calibration, cards, demo, diagnose, evaluate, finetune, grid, leaderboard, results,
                       run, serve, suite, targets, tokens, validate, worker)
from .errors import MembenchError

# In the order of the pipeline: data, scoring, diagnostics, publishing, submissions.
COMMANDS = (
    demo, suite, targets, finetune, run, calibration, grid, bench, diagnose, cards,
    results, leaderboard, serve, validate, evaluate, worker, tokens,
)

_FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction,
          argparse._CountAction, argparse._HelpAction, argparse._VersionAction)


class _Formatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option whose help does not already state its default,
    ``(default: none)`` to one that is unset by default; required options (also those of a
    required either-or group) and flags (off by default) are left as they are."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or isinstance(action, _FLAGS) or action.required
                or getattr(action, "in_required_group", False) or "default" in text.lower()
                or action.default is argparse.SUPPRESS):
            return text
        return text + (" (default: none)" if action.default is None else " (default: %(default)s)")


def wants_json(argv) -> bool:
    return "--json" in (sys.argv[1:] if argv is None else argv)


def _error(message: str, hint: str | None, code: int, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": message, "hint": hint, "exit_code": code}), file=sys.stderr)
    else:
        print(f"membench: error: {message}" + (f" ({hint})" if hint else ""), file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if not action.help and action.option_strings and not isinstance(action, _FLAGS):
            action.help = "default: none" if action.default is None else "default: %(default)s"
        return action

    def parse_known_args(self, args=None, namespace=None):
        for group in self._mutually_exclusive_groups:  # either-or options: required as a group
            for action in group._group_actions:
                action.in_required_group = group.required
        return super().parse_known_args(args, namespace)

    def error(self, message):  # one line, exit 2, like every other input error
        if wants_json(None if _ARGV is None else _ARGV):
            self.exit(2, json.dumps({"error": f"{self.prog}: {message}", "hint": f"see `{self.prog} --help`",
                                     "exit_code": 2}) + "\n")
        self.exit(2, f"{self.prog}: error: {message}\n")


_ARGV: list | None = None  # the argv being parsed (so parser errors know about --json)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="membench",
        description="Benchmark membership-inference attacks on language models.",
        allow_abbrev=False,  # a command's own option (`bench --profile`) is never taken for a prefix of these
    )
    parser.add_argument("--version", action="version", version=f"membench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    # `membench bench --profile` runs commands with these (profiling.run_profiled): not for users
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--profile-launched", type=float, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    global _ARGV
    _ARGV = list(argv) if argv is not None else None
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="membench: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.profile_to:
        return profiling.profiled(lambda: _run(args), args.profile_to, args.profile_launched,
                                  sys.argv[1:] if argv is None else list(argv))
    return _run(args)


def _run(args) -> int:
    """The command's exit status; an input error is one line (or one JSON object), exit 2."""
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.func(args) or 0)
    except MembenchError as exc:
        return _error(exc.message, exc.hint, exc.exit_code, as_json)
    except KeyboardInterrupt:
        return _error("interrupted", "what was cached is kept and will be reused", 130, as_json)


if __name__ == "__main__":
    sys.exit(main())
