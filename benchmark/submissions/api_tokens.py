"""API tokens: who may submit, under which name, how often.

A token is 32 random bytes (``mbt_`` + URL-safe base64), shown once when made
(``membench tokens add NAME``) and stored only as its SHA-256 in the queue database (a token
has 256 bits of entropy, so a fast hash is enough: nothing can be guessed from it). ``NAME``
is the submitter (a person or a lab): it owns the submission names its tokens publish first,
so a revoked token can be replaced by a new one under the same name without losing them.
Each name has a limit of uploads per 24 hours (``per_day``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass

from ..errors import MembenchError
from .queue import DAY, MAINTAINERS, Queue

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
PREFIX = "mbt_"
DEFAULT_PER_DAY = 20


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    per_day: int
    created_at: float
    revoked_at: float | None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "per_day": self.per_day, "created_at": self.created_at,
                "revoked_at": self.revoked_at, "active": self.revoked_at is None}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def add(queue: Queue, name: str, *, per_day: int = DEFAULT_PER_DAY) -> tuple[str, Token]:
    """Make a token for submitter ``name``; return (the secret, its record). The secret is
    not stored and cannot be shown again."""
    if not NAME.match(name) or name == MAINTAINERS:
        raise MembenchError(f"{name!r} is not a valid submitter name",
                            "use lowercase letters, digits, '_', '.', '-' (at most 64), not 'maintainers'")
    if per_day < 1:
        raise MembenchError("--per-day must be at least 1")
    secret = PREFIX + secrets.token_urlsafe(32)
    tok = Token(f"tok_{uuid.uuid4().hex[:12]}", name, int(per_day), time.time(), None)
    with queue.transaction() as c:
        c.execute("INSERT INTO tokens (id, name, hash, per_day, created_at) VALUES (?, ?, ?, ?, ?)",
                  (tok.id, tok.name, _hash(secret), tok.per_day, tok.created_at))
    return secret, tok


def _row(r) -> Token:
    return Token(r["id"], r["name"], r["per_day"], r["created_at"], r["revoked_at"])


def list_tokens(queue: Queue) -> list[dict]:
    now = time.time()
    with queue.connect() as c:
        rows = c.execute("SELECT * FROM tokens ORDER BY created_at").fetchall()
        out = []
        for r in rows:
            recent = c.execute("SELECT COUNT(*) FROM jobs WHERE owner = ? AND created_at > ?",
                               (r["name"], now - DAY)).fetchone()[0]
            out.append({**_row(r).as_dict(), "submissions_last_24h": recent})
    return out


def revoke(queue: Queue, which: str) -> list[Token]:
    """Revoke the token with id ``which``, or every active token of submitter ``which``."""
    now = time.time()
    with queue.transaction() as c:
        rows = c.execute("SELECT * FROM tokens WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                         (which, which)).fetchall()
        if not rows:
            raise MembenchError(f"no active token with id or name {which!r}", "see `membench tokens list`")
        c.execute("UPDATE tokens SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                  (now, which, which))
    return [_row(r) for r in rows]


def authenticate(queue: Queue, secret: str | None) -> Token | None:
    """The active token whose secret is ``secret`` (None for no, unknown or revoked tokens)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    with queue.connect() as c:
        row = c.execute("SELECT * FROM tokens WHERE hash = ? AND revoked_at IS NULL", (_hash(secret),)).fetchone()
    return _row(row) if row is not None else None
