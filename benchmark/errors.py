"""The one exception type that reaches users: it names what is wrong and what to do."""


class MembenchError(Exception):
    """An error caused by input (a name, a file, a setting), reported in one line.

    ``hint`` says what to do about it; the CLI prints ``error: <message> (<hint>)`` and exits 2.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


def unknown(kind: str, name: str, choices) -> MembenchError:
    """Error for a name that is not in a registry, listing the valid choices."""
    listed = ", ".join(sorted(choices)) or "(none)"
    return MembenchError(f"unknown {kind} '{name}'; valid choices: {listed}")
