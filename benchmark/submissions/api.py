"""HTTP endpoints for submissions, as a FastAPI ``router`` (included by ``benchmark.server``).

Every call but the counts needs ``Authorization: Bearer <token>`` (a token from
``membench tokens add NAME``): 401 without a valid one.

- ``POST /api/submissions?split=...&target=...``: the request body is a zip or tar (optionally
  compressed) of a submission folder, at most ``archive.MAX_UPLOAD`` bytes; it is extracted
  safely, its ``submission.yaml`` checked, and queued under the token's name. 201 with
  ``{"id", "status", "url"}``; 400 for a refused archive or metadata; 403 for a name that is
  reserved or belongs to another submitter; 413 when too large; 422 for an unknown split or
  target; 429 (with ``Retry-After``) past the submitter's uploads per 24 hours.
- ``GET /api/submissions/{id}``: the submitter's own job: ``pending`` / ``running`` /
  ``done`` / ``failed``, attempts, error, result summary and the job log (404 for another's).
- ``GET /api/submissions``: counts per status.

The queue is ``app.state.submission_queue`` when the app sets one, else the default queue in
``$MEMBENCH_HOME/queue``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from ..errors import MembenchError
from . import archive, tokens, untrusted
from .metadata import ReservedName
from .queue import PRIVATE_SPLIT_PER_DAY, NameTaken, Queue, RateLimited, default_root

router = APIRouter(prefix="/api/submissions", tags=["submissions"])
DEFAULT_SPLIT = "demo/pydoc"
DEFAULT_TARGET = "demo/neox-tiny"
AUTH_HINT = "send Authorization: Bearer <token>; a maintainer makes one with `membench tokens add NAME`"


@lru_cache(maxsize=8)
def _queue_at(root: str) -> Queue:
    return Queue(Path(root))


def get_queue(request: Request) -> Queue:
    queue = getattr(request.app.state, "submission_queue", None)
    return queue if queue is not None else _queue_at(str(default_root()))


async def _submitter(request: Request, queue: Queue) -> tokens.Token:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = None
    if scheme.lower() == "bearer":
        token = await run_in_threadpool(tokens.authenticate, queue, secret.strip())
    if token is None:
        raise HTTPException(401, f"a valid API token is required ({AUTH_HINT})",
                            headers={"WWW-Authenticate": "Bearer"})
    return token


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared)} bytes exceeds the {limit} byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload exceeds the {limit} byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", status_code=201)
async def submit(request: Request, split: str = DEFAULT_SPLIT, target: str = DEFAULT_TARGET) -> dict:
    """Queue a submission: the body is a zip or tar of the folder (scorer.py + submission.yaml)."""
    from .. import suite, targets

    queue = get_queue(request)
    who = await _submitter(request, queue)
    try:
        spec = suite.get_split(split)
        targets.get_target(target)
    except MembenchError as exc:
        raise HTTPException(422, untrusted.one_line(exc, 300)) from None
    quota = PRIVATE_SPLIT_PER_DAY if spec.extra.get("private") is True else None  # each upload queries its labels
    data = await _read_body(request, archive.MAX_UPLOAD)
    if not data:
        raise HTTPException(400, "empty upload: send the zip or tar of a submission folder as the body")
    try:
        job_id = await run_in_threadpool(queue.submit_archive, data, split=split, target=target, owner=who.name,
                                         per_day=who.per_day, per_split_day=quota)
    except RateLimited as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except (NameTaken, ReservedName) as exc:
        raise HTTPException(403, untrusted.one_line(exc, 600)) from None
    except MembenchError as exc:  # archive refusals and metadata problems
        raise HTTPException(400, untrusted.one_line(exc, 600)) from None
    return {"id": job_id, "status": "pending", "url": f"/api/submissions/{job_id}"}


@router.get("")
async def counts(request: Request) -> dict:
    return await run_in_threadpool(get_queue(request).counts)


@router.get("/{job_id}")
async def status(job_id: str, request: Request) -> dict:
    """The submitter's own job: state (pending / running / done / failed), error, result and log."""
    queue = get_queue(request)
    who = await _submitter(request, queue)
    if not job_id.isalnum() or len(job_id) > 64:
        raise HTTPException(404, "no such submission")
    job = await run_in_threadpool(queue.get, job_id)
    if job is None or job.get("owner") != who.name:
        raise HTTPException(404, "no such submission among yours")
    return job


def create_app(queue_root: Path | None = None) -> FastAPI:
    """A minimal app with only this router (the full app is ``benchmark.server.create_app``)."""
    app = FastAPI(title="membench submissions")
    app.state.submission_queue = Queue(queue_root) if queue_root is not None else None
    app.include_router(router)
    return app
