"""HTTP endpoints for submissions, as a FastAPI ``router`` (included by ``benchmark.site.app``).

- ``POST /api/submissions?split=...&target=...``: the request body is a zip or tar (optionally
  compressed) of a submission folder, at most ``archive.MAX_UPLOAD`` bytes; it is extracted
  safely and queued. 201 with ``{"id", "status", "url"}``; 400 for a refused archive; 413 when
  too large; 422 for an unknown split or target.
- ``GET /api/submissions/{id}``: ``pending`` / ``running`` / ``done`` / ``failed``, attempts,
  error, result summary and the job log.
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
from . import archive
from .queue import Queue, default_root

router = APIRouter(prefix="/api/submissions", tags=["submissions"])
DEFAULT_SPLIT = "demo/pydoc"
DEFAULT_TARGET = "demo/neox-tiny"


@lru_cache(maxsize=8)
def _queue_at(root: str) -> Queue:
    return Queue(Path(root))


def get_queue(request: Request) -> Queue:
    queue = getattr(request.app.state, "submission_queue", None)
    return queue if queue is not None else _queue_at(str(default_root()))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the {limit} byte limit")
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

    try:
        suite.get_split(split)
        targets.get_target(target)
    except MembenchError as exc:
        raise HTTPException(422, str(exc)) from None
    data = await _read_body(request, archive.MAX_UPLOAD)
    if not data:
        raise HTTPException(400, "empty upload: send the zip or tar of a submission folder as the body")
    queue = get_queue(request)
    try:
        job_id = await run_in_threadpool(queue.submit_archive, data, split=split, target=target)
    except archive.ArchiveError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": job_id, "status": "pending", "url": f"/api/submissions/{job_id}"}


@router.get("")
async def counts(request: Request) -> dict:
    return await run_in_threadpool(get_queue(request).counts)


@router.get("/{job_id}")
async def status(job_id: str, request: Request) -> dict:
    """A job's state (pending / running / done / failed), error, result and log."""
    if not job_id.isalnum() or len(job_id) > 64:
        raise HTTPException(404, f"no submission {job_id!r}")
    job = await run_in_threadpool(get_queue(request).get, job_id)
    if job is None:
        raise HTTPException(404, f"no submission {job_id!r}")
    return job


def create_app(queue_root: Path | None = None) -> FastAPI:
    """A minimal app with only this router (the full app is ``benchmark.site.app.create_app``)."""
    app = FastAPI(title="membench submissions")
    app.state.submission_queue = Queue(queue_root) if queue_root is not None else None
    app.include_router(router)
    return app
