"""CLI command modules; each defines ``register(subparsers)``. Shared helpers below."""

from __future__ import annotations

import json
import sys


def emit(args, payload, text: str | None = None) -> None:
    """Print ``payload`` as JSON under ``--json``; otherwise print ``text``."""
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif text is not None:
        print(text)


def table(rows: list[list], header: list[str]) -> str:
    """A plain fixed-width text table."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
