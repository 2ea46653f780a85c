"""`membench tokens add|list|revoke`: the API tokens submitters authenticate with."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ..submissions import api_tokens
from ..submissions.queue import Queue
from . import emit, table


def register(sub):
    p = sub.add_parser("tokens", help="API tokens for submitters: add, list, revoke")
    p.add_argument("--queue", type=Path, default=None, help="queue folder (default: $MEMBENCH_HOME/queue)")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="make a token for a submitter (printed once, stored hashed)")
    a.add_argument("name", help="the submitter (a person or lab): owns the names its tokens publish first")
    a.add_argument("--per-day", type=int, default=None, help="uploads allowed in any 24 hours (default 20)")
    a.add_argument("--json", action="store_true")
    ls = actions.add_parser("list", help="every token: submitter, id, state, uploads in the last 24 hours")
    ls.add_argument("--json", action="store_true")
    r = actions.add_parser("revoke", help="revoke a token (by id) or every token of a submitter (by name)")
    r.add_argument("which", help="token id (tok_...) or submitter name")
    r.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def _when(ts) -> str:
    return "" if ts is None else _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def handle(args) -> int:
    queue = Queue(args.queue)
    if args.action == "add":
        kwargs = {} if args.per_day is None else {"per_day": args.per_day}
        secret, tok = api_tokens.add(queue, args.name, **kwargs)
        emit(args, {**tok.as_dict(), "token": secret},
             f"token for {tok.name} ({tok.id}, {tok.per_day} uploads per 24 hours):\n{secret}\n"
             "It is shown once and stored only as a hash: give it to the submitter now.\n"
             "Use: curl -H 'Authorization: Bearer <token>' --data-binary @sub.zip .../api/submissions")
        return 0
    if args.action == "list":
        rows = api_tokens.list_tokens(queue)
        emit(args, rows, table([[r["name"], r["id"], "active" if r["active"] else f"revoked {_when(r['revoked_at'])}",
                                 _when(r["created_at"]), r["per_day"], r["submissions_last_24h"]] for r in rows],
                               ["submitter", "id", "state", "created (UTC)", "per day", "last 24 h"]))
        return 0
    gone = api_tokens.revoke(queue, args.which)
    emit(args, [t.as_dict() for t in gone], "revoked: " + ", ".join(f"{t.id} ({t.name})" for t in gone))
    return 0
