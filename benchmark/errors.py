"""The one exception type that reaches users: it names what is wrong and what to do."""

from __future__ import annotations

import difflib


class MembenchError(Exception):
    """An error caused by input (a name, a file, a setting), reported in one line.

    ``hint`` says what to do about it; the CLI prints ``error: <message> (<hint>)`` and exits 2
    (with ``--json``: one JSON object ``{"error": message, "hint": hint}`` on stderr).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def as_dict(self) -> dict:
        return {"error": self.message, "hint": self.hint, "exit_code": self.exit_code}


# Where the full list of each kind of name can be seen (for long registries).
LISTED_BY = {"split": "membench suite list", "target": "membench targets list"}
MAX_LISTED = 15


def closest(name: str, choices, n: int = 3) -> list[str]:
    """The registry names closest to ``name`` (difflib's ratio), best first."""
    return difflib.get_close_matches(name, [str(c) for c in choices], n=n, cutoff=0.6)


def unknown(kind: str, name: str, choices) -> MembenchError:
    """Error for a name that is not in a registry: the closest names, and the valid choices
    (all of them when the list is short, else the command that lists them)."""
    choices = sorted(str(c) for c in choices)
    near = closest(name, choices)
    message = f"unknown {kind} '{name}'"
    if near:
        message += "; did you mean " + " or ".join(f"'{c}'" for c in near) + "?"
    if len(choices) <= MAX_LISTED or kind not in LISTED_BY:
        return MembenchError(f"{message}; valid choices: {', '.join(choices) or '(none)'}")
    return MembenchError(message, f"`{LISTED_BY[kind]}` shows all {len(choices)} valid choices")
