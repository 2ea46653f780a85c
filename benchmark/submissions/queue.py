"""The submission queue: SQLite in WAL mode, embedded, safe for many writers and workers.

A job moves pending -> running -> done | failed. A worker claims one job in an immediate
transaction and holds it by a lease (``lease_until``) that a heartbeat extends; every claim
gets a fresh ``token``, and only the holder of the current token can finish the job. A job
whose worker died returns to the pool when its lease expires and is retried (at most
``max_attempts`` claims), so it is never lost; a worker that lost its lease cannot finish or
publish it, so it is never completed twice. ``events`` keeps the history of every job.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import MembenchError
from ..home import queue_dir
from . import archive

STATUSES = ("pending", "running", "done", "failed")
LOG_LIMIT = 64 * 1024  # characters of log returned by ``get``

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT,
    split TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    token TEXT,
    lease_until REAL,
    error TEXT,
    result TEXT,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    worker TEXT,
    detail TEXT
);
"""


def _event(c, job_id: str, at: float, kind: str, worker: str | None = None, detail: str | None = None) -> None:
    c.execute("INSERT INTO events (job_id, at, kind, worker, detail) VALUES (?, ?, ?, ?, ?)",
              (job_id, at, kind, worker, detail))


def default_root() -> Path:
    return queue_dir()


@dataclass
class Job:
    id: str
    name: str | None
    split: str
    target: str
    attempts: int
    worker: str
    token: str
    folder: Path  # the extracted submission
    dir: Path  # the job's own folder (log, staged results)

    @property
    def log_path(self) -> Path:
        return self.dir / "job.log"


class Queue:
    def __init__(self, root: Path | None = None, *, max_attempts: int = 3):
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        self.db = self.root / "queue.sqlite"
        self.max_attempts = max_attempts
        with self._conn() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.executescript(_SCHEMA)

    @contextmanager
    def _conn(self):
        conn = sqlite3.connect(self.db, timeout=60, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=60000")
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _tx(self):
        with self._conn() as c:
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    # -- submitting -------------------------------------------------------------------------
    def submit_archive(self, data: bytes, *, split: str, target: str) -> str:
        """Extract an uploaded archive safely and queue it; return the job id."""
        job_id = uuid.uuid4().hex
        jdir = self.job_dir(job_id)
        jdir.mkdir(parents=True)
        try:
            folder = archive.extract(data, jdir / "upload")
            if folder != jdir / "upload":
                shutil.move(str(folder), str(jdir / "submission"))
                shutil.rmtree(jdir / "upload")
            else:
                (jdir / "upload").rename(jdir / "submission")
            self._insert(job_id, split, target)
        except BaseException:
            shutil.rmtree(jdir, ignore_errors=True)
            raise
        return job_id

    def submit_folder(self, folder: Path, *, split: str, target: str) -> str:
        """Queue a copy of a local submission folder (no links followed); return the job id."""
        folder = Path(folder)
        if not folder.is_dir():
            raise MembenchError(f"submission folder {folder} does not exist")
        job_id = uuid.uuid4().hex
        jdir = self.job_dir(job_id)
        jdir.mkdir(parents=True)
        shutil.copytree(folder, jdir / "submission", symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
        self._insert(job_id, split, target)
        return job_id

    def _insert(self, job_id: str, split: str, target: str) -> None:
        name = None
        try:
            import yaml

            meta = yaml.safe_load((self.job_dir(job_id) / "submission" / "submission.yaml").read_text())
            name = str(meta.get("name"))[:64] if isinstance(meta, dict) and meta.get("name") else None
        except Exception:  # noqa: BLE001  (validated by the worker; the name is only a label)
            pass
        now = time.time()
        with self._tx() as c:
            c.execute(
                "INSERT INTO jobs (id, name, split, target, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                (job_id, name, split, target, now, now),
            )
            _event(c, job_id, now, "submitted")

    # -- working ----------------------------------------------------------------------------
    def claim(self, worker: str, lease_s: float) -> Job | None:
        """Take the oldest pending job (or one whose lease expired) for ``worker``."""
        while True:
            now = time.time()
            with self._tx() as c:
                row = c.execute(
                    "SELECT * FROM jobs WHERE status = 'pending' "
                    "OR (status = 'running' AND lease_until < ?) ORDER BY created_at, rowid LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                if row["status"] == "running":
                    _event(c, row["id"], now, "lease_expired", row["worker"], f"attempt {row['attempts']}")
                if row["attempts"] >= self.max_attempts:
                    msg = (f"the job's worker stopped {row['attempts']} times without finishing it "
                           "(the scorer may crash the harness); giving up")
                    c.execute("UPDATE jobs SET status = 'failed', error = ?, updated_at = ?, token = NULL "
                              "WHERE id = ?", (msg, now, row["id"]))
                    _event(c, row["id"], now, "failed", detail=msg)
                    continue
                token = uuid.uuid4().hex
                c.execute(
                    "UPDATE jobs SET status = 'running', worker = ?, token = ?, lease_until = ?, "
                    "attempts = attempts + 1, updated_at = ? WHERE id = ?",
                    (worker, token, now + lease_s, now, row["id"]),
                )
                _event(c, row["id"], now, "claimed", worker, f"attempt {row['attempts'] + 1}")
            jdir = self.job_dir(row["id"])
            return Job(row["id"], row["name"], row["split"], row["target"], row["attempts"] + 1,
                       worker, token, jdir / "submission", jdir)

    def heartbeat(self, job: Job, lease_s: float) -> bool:
        """Extend the lease; False if the job is no longer this worker's."""
        now = time.time()
        with self._tx() as c:
            cur = c.execute("UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND token = ? "
                            "AND status = 'running'", (now + lease_s, now, job.id, job.token))
            return cur.rowcount == 1

    def finish(self, job: Job, status: str, *, error: str | None = None, result: dict | None = None) -> bool:
        """Mark the job done or failed; False (and no change) if this worker lost it."""
        assert status in ("done", "failed")
        now = time.time()
        with self._tx() as c:
            cur = c.execute(
                "UPDATE jobs SET status = ?, error = ?, result = ?, updated_at = ?, lease_until = NULL "
                "WHERE id = ? AND token = ? AND status = 'running'",
                (status, error, json.dumps(result) if result is not None else None, now, job.id, job.token),
            )
            if cur.rowcount != 1:
                return False
            _event(c, job.id, now, status, job.worker, error)
            return True

    def unpublished(self) -> list[str]:
        with self._conn() as c:
            return [r[0] for r in c.execute(
                "SELECT id FROM jobs WHERE status = 'done' AND published = 0 ORDER BY updated_at")]

    def mark_published(self, job_id: str) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE jobs SET published = 1, updated_at = ? WHERE id = ?", (now, job_id))
            _event(c, job_id, now, "published")

    # -- reading ----------------------------------------------------------------------------
    def get(self, job_id: str, *, with_log: bool = True) -> dict | None:
        with self._conn() as c:
            row = c.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        out = {
            "id": row["id"],
            "name": row["name"],
            "split": row["split"],
            "target": row["target"],
            "status": row["status"],
            "attempts": row["attempts"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "error": row["error"],
            "result": json.loads(row["result"]) if row["result"] else None,
            "published": bool(row["published"]),
        }
        if with_log:
            log = self.job_dir(job_id) / "job.log"
            text = log.read_text(errors="replace") if log.is_file() else ""
            out["log"] = text[-LOG_LIMIT:]
        return out

    def events(self, job_id: str | None = None) -> list[dict]:
        with self._conn() as c:
            sql = "SELECT * FROM events" + (" WHERE job_id = ?" if job_id else "") + " ORDER BY seq"
            return [dict(r) for r in c.execute(sql, (job_id,) if job_id else ())]

    def counts(self) -> dict:
        with self._conn() as c:
            got = dict(c.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {s: got.get(s, 0) for s in STATUSES}
