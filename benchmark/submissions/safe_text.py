"""Text that came from a submission, made safe to show in an error, a log or an HTTP answer.

Everything a scorer or an uploader controls (names in an archive, exception messages, its
own output) passes through here before it reaches a person: control characters (newlines,
carriage returns, escape sequences, NUL) are replaced, so it cannot start a line that looks
like the harness's own, and it is cut to a bounded length, so it cannot make an error huge.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(value, limit: int = 200) -> str:
    """``value`` as one printable line of at most ``limit`` characters (plus a marker when cut)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > 4 * limit:  # never run the pattern over megabytes
        text = text[: 4 * limit]
        cut = True
    else:
        cut = False
    text = _CONTROL.sub(" ", text)
    if len(text) > limit:
        text, cut = text[:limit], True
    return text + ("... [cut]" if cut else "")


def name(value, limit: int = 80) -> str:
    """A file or member name for an error message: quoted, one line, short."""
    return repr(one_line(value, limit))
