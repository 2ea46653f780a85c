"""Who owns which submission name: one table, consulted by ``validate``, ``evaluate``, the API
and the worker (``check``).

A name is
- **the maintainers' for good** when it is a built-in attack, a blind baseline (or starts with
  ``blind``), a reserved word, or the name of any record the maintainers published: a built-in
  or baseline record, a reported result, or a submission they evaluated themselves
  (``owner`` empty or ``maintainers``), in the published results folders (``published_dirs``);
- **a submitter's** once the first record under it is published (a record whose scorer block
  says ``kind: submission`` and its ``owner``), or once the queue's ``names`` table records its
  claim (``Queue.claim_name``: the first to publish it).

``check(name, owner)`` refuses a name held by anyone but ``owner`` (the maintainers may reuse
their own published submission names, never a built-in's); ``claim`` also records the claim.
The published folders are read lightly (the scorer block of each JSON file), cached by file
size and modification time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..attacks import scorers
from ..diagnostics import BASELINES
from ..errors import MembenchError
from . import safe_text

MAINTAINERS = "maintainers"
RESERVED_WORDS = ("none", "maintainers", "loss_ref", "reference", "baseline")
HINT = "choose another name in submission.yaml"


class ReservedName(MembenchError):
    """A name that is the maintainers' (a built-in, a baseline, a name they published)."""


class NameTaken(MembenchError):
    """A name that belongs to another submitter."""


def builtin_reason(name: str) -> str | None:
    """Why ``name`` is nobody's to submit (built-in attacks, baselines, reserved words)."""
    if name in scorers():
        return f"'{name}' is the name of a built-in attack"
    if name in BASELINES or name.startswith("blind"):
        return f"'{name}' is reserved for blind baselines"
    if name in RESERVED_WORDS:
        return f"'{name}' is reserved"
    return None


def published_dirs(extra=()) -> list[Path]:
    """The folders whose records hold names: the default results folder under MEMBENCH_HOME, the
    repository's published results, and ``extra`` (e.g. the worker's results folder)."""
    from ..home import PUBLISHED_RESULTS, results_dir

    out = []
    for d in (results_dir(), PUBLISHED_RESULTS, *extra):
        if d is None:
            continue
        d = Path(d)
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


_cache: dict[str, tuple[tuple[int, int], tuple]] = {}


def _scorer_of(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_size, st.st_mtime_ns)
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(64 << 20))
        scorer = doc.get("scorer") or {}
        entry = (str(scorer.get("name")), str(scorer.get("kind") or "builtin"), str(scorer.get("owner") or MAINTAINERS))
    except (OSError, ValueError, AttributeError):
        entry = None
    _cache[path] = (key, entry)
    return entry


def holders(name: str, dirs) -> set[tuple[str, str]]:
    """(kind, owner) of every record named ``name`` in ``dirs``."""
    out = set()
    for root in dirs:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
            for fn in filenames:
                if fn.endswith(".json"):
                    entry = _scorer_of(os.path.join(dirpath, fn))
                    if entry is not None and entry[0] == name:
                        out.add(entry[1:])
    return out


def owner_of(name: str, *, queue=None, results_dirs=()) -> str | None:
    """Who holds ``name``: ``MAINTAINERS`` for a built-in's or a maintainers' published name, a
    submitter's name, or None when it is free."""
    if builtin_reason(name):
        return MAINTAINERS
    held = holders(name, published_dirs(results_dirs))
    if any(kind != "submission" or owner == MAINTAINERS for kind, owner in held):
        return MAINTAINERS
    if held:
        return sorted(owner for _, owner in held)[0]
    if queue is not None:
        return queue.name_owner(name)
    return None


def check(name: str, owner: str | None = None, *, queue=None, results_dirs=(), claim: bool = False) -> None:
    """Refuse ``name`` unless it is free or ``owner``'s (``owner`` None: who submits is not known,
    so only the names nobody may take are refused: built-ins, baselines, reported results). With ``claim``, record ``owner`` as its holder in the
    queue (atomically: a name claimed meanwhile is refused)."""
    shown = safe_text.one_line(name, 64)
    why = builtin_reason(name)
    if why:
        raise ReservedName(f"name {why}", HINT)
    held = holders(name, published_dirs(results_dirs))
    builtin = {(k, o) for k, o in held if k != "submission"}
    if builtin:
        raise ReservedName(f"the name '{shown}' is published by the maintainers as a built-in, a baseline or a "
                           "reported result", HINT)
    if owner is None:  # who submits is not known (a local `validate`): only the names nobody may take
        return
    others = {o for _, o in held if o != owner}
    if others:
        if MAINTAINERS in others:
            raise ReservedName(f"the name '{shown}' is published by the maintainers", HINT)
        raise NameTaken(f"the name '{shown}' belongs to another submitter (the first to publish it)", HINT)
    if queue is not None:
        holder = queue.claim_name(name, owner) if claim and owner is not None else queue.name_owner(name)
        if holder is not None and holder != owner:
            raise NameTaken(f"the name '{shown}' belongs to another submitter (the first to publish it)", HINT)
