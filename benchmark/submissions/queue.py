"""The submission queue: SQLite in WAL mode, embedded, safe for many writers and workers.

A job moves pending -> running -> done | failed. A worker claims one job in an immediate
transaction and holds it by a lease (``lease_until``) that a heartbeat extends; every claim
gets a fresh ``token``, and only the holder of the current token can finish the job. A job
whose worker died returns to the pool when its lease expires and is retried (at most
``max_attempts`` claims), so it is never lost; a worker that lost its lease cannot finish or
publish it, so it is never completed twice. ``events`` keeps the history of every job.

Who submits: a job uploaded through the API carries its ``owner`` (the name of the token
that sent it, ``benchmark.submissions.api_tokens``); a job queued from a local folder by the
operator has none (the maintainers). ``names`` records which owner first published each
submission name: nobody else may publish under it (``claim_name``). Uploads per owner are
rate-limited in the same transaction that queues them (``submit_archive(..., per_day=)``), and
on a private split also per split (``per_split_day=``, ``PRIVATE_SPLIT_PER_DAY`` from the API):
every upload there is a query to the split's secret labels, which the Ladder
(``results.ladder``) answers with a guarantee that weakens as the owner's queries grow.
A refused upload (``refusals``) counts against both limits like an accepted one, so no refusal
can be probed for free; ``submit_archive`` also asks the owner table (``owners``) and refuses a
target or reference model that is not a built registry target (``metadata.check_job``).
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
from . import archive, guards, joblog, metadata, owners, safe_text
from .folder import copy_folder
from .owners import MAINTAINERS, NameTaken  # noqa: F401  (MAINTAINERS: re-exported)

STATUSES = ("pending", "running", "done", "failed")
LOG_LIMIT = 64 * 1024  # characters of log returned by ``get``
DAY = 86400.0
PRIVATE_SPLIT_PER_DAY = 5  # an owner's uploads to one private split in any 24 hours (Kaggle's usual daily limit)


class RateLimited(MembenchError):
    """The owner has used up their submissions for now; ``retry_after`` seconds until one frees."""

    def __init__(self, message: str, hint: str, retry_after: int):
        super().__init__(message, hint)
        self.retry_after = retry_after



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
    published INTEGER NOT NULL DEFAULT 0,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS names (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    claimed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    owner TEXT NOT NULL,
    split TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    per_day INTEGER NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
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
    owner: str | None = None  # the submitting token's name; None: the operator (maintainers)

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
            if "owner" not in {r[1] for r in c.execute("PRAGMA table_info(jobs)")}:  # a queue made before owners
                c.execute("ALTER TABLE jobs ADD COLUMN owner TEXT")

    def connect(self):
        """A connection (a context manager), for the modules that share this database."""
        return self._conn()

    def transaction(self):
        """An immediate transaction (a context manager)."""
        return self._tx()

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
    def submit_archive(self, data: bytes, *, split: str, target: str, owner: str | None = None,
                       per_day: int | None = None, per_split_day: int | None = None) -> str:
        """Extract an uploaded archive safely, check its metadata (schema, reserved names, the
        name's owner) and queue it; return the job id. ``per_day``: the owner's limit of
        uploads in any 24 hours; ``per_split_day``: their quota on this split in any 24 hours
        (both checked before extracting and again when queueing)."""
        if owner is not None and (per_day is not None or per_split_day is not None):
            with self._conn() as c:
                self._check_limits(c, owner, split, per_day, per_split_day, time.time())
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
            meta = metadata.load(jdir / "submission").meta
            if owner is not None:
                owners.check(meta["name"], owner, queue=self)
            metadata.check_job(jdir / "submission", target, budget=None)  # ids only, built only: never built here
            self._insert(job_id, split, target, name=meta["name"], owner=owner, per_day=per_day,
                         per_split_day=per_split_day)
        except BaseException as exc:
            shutil.rmtree(jdir, ignore_errors=True)
            if owner is not None and isinstance(exc, MembenchError) and not isinstance(exc, RateLimited):
                self.record_refusal(owner, split)  # a refusal costs the quota an upload costs (no free probing)
            raise
        return job_id

    def check_limits(self, owner: str, split: str, per_day: int | None, per_split_day: int | None) -> None:
        """``RateLimited`` when ``owner`` has used up a quota (uploads and refusals alike)."""
        with self._conn() as c:
            self._check_limits(c, owner, split, per_day, per_split_day, time.time())

    def record_refusal(self, owner: str, split: str) -> None:
        """Count a refused upload of ``owner`` against their quotas, as an accepted one counts."""
        with self._tx() as c:
            c.execute("INSERT INTO refusals (owner, split, at) VALUES (?, ?, ?)", (owner, split, time.time()))

    def name_owner(self, name: str) -> str | None:
        """The owner recorded for ``name`` in the names table, or None."""
        with self._conn() as c:
            row = c.execute("SELECT owner FROM names WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def submit_folder(self, folder: Path, *, split: str, target: str) -> str:
        """Queue a copy of a local submission folder (no link followed, at any depth), as the
        operator (owner: the maintainers); return the job id. Its metadata is checked by the
        worker."""
        folder = Path(folder)
        if not folder.is_dir():
            raise MembenchError(f"submission folder {safe_text.name(str(folder), 160)} does not exist")
        job_id = uuid.uuid4().hex
        jdir = self.job_dir(job_id)
        jdir.mkdir(parents=True)
        try:
            copy_folder(folder, jdir / "submission")
            name = None
            try:
                name = metadata.parse(metadata.read_text(jdir / "submission" / "submission.yaml")).get("name")
            except MembenchError:
                pass  # the worker reports it; the name is only a label here
            self._insert(job_id, split, target, name=name if isinstance(name, str) else None)
        except BaseException:
            shutil.rmtree(jdir, ignore_errors=True)
            raise
        return job_id

    @staticmethod
    def _check_rate(c, owner: str, per_day: int, now: float) -> None:
        rows = c.execute("SELECT created_at FROM jobs WHERE owner = ? AND created_at > ? UNION ALL "
                         "SELECT at FROM refusals WHERE owner = ? AND at > ? ORDER BY 1",
                         (owner, now - DAY, owner, now - DAY)).fetchall()
        if len(rows) >= per_day:
            wait = int(rows[0][0] + DAY - now) + 1
            raise RateLimited(f"{owner} has sent {len(rows)} submissions in the last 24 hours (limit {per_day})",
                              f"try again in {wait} s", retry_after=wait)

    @classmethod
    def _check_limits(cls, c, owner: str, split: str, per_day: int | None, per_split_day: int | None,
                      now: float) -> None:
        if per_day is not None:
            cls._check_rate(c, owner, per_day, now)
        if per_split_day is not None:
            cls._check_split_quota(c, owner, split, per_split_day, now)

    @staticmethod
    def _check_split_quota(c, owner: str, split: str, quota: int, now: float) -> None:
        rows = c.execute("SELECT created_at FROM jobs WHERE owner = ? AND split = ? AND created_at > ? UNION ALL "
                         "SELECT at FROM refusals WHERE owner = ? AND split = ? AND at > ? ORDER BY 1",
                         (owner, split, now - DAY, owner, split, now - DAY)).fetchall()
        if len(rows) >= quota:
            frees = rows[0][0] + DAY
            wait = int(frees - now) + 1
            at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(frees))
            raise RateLimited(f"{owner} has sent {len(rows)} submissions to split {safe_text.one_line(split, 80)} in "
                              f"the last 24 hours: the quota is {quota} per private split per day",
                              f"the quota frees one at {at} (in {wait} s)", retry_after=wait)

    def _insert(self, job_id: str, split: str, target: str, *, name: str | None, owner: str | None = None,
                per_day: int | None = None, per_split_day: int | None = None) -> None:
        label = safe_text.one_line(name, 64) if name else None
        now = time.time()
        with self._tx() as c:
            if owner is not None:
                self._check_limits(c, owner, split, per_day, per_split_day, now)
            if owner is not None and name:
                held = c.execute("SELECT owner FROM names WHERE name = ?", (name,)).fetchone()
                if held is not None and held[0] != owner:
                    raise NameTaken(f"the name '{label}' belongs to another submitter",
                                    "choose another name in submission.yaml")
            c.execute(
                "INSERT INTO jobs (id, name, split, target, status, created_at, updated_at, owner) "
                "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                (job_id, label, split, target, now, now, owner),
            )
            _event(c, job_id, now, "submitted", detail=f"owner {owner}" if owner else None)

    def claim_name(self, name: str, owner: str) -> str | None:
        """Record ``owner`` as the owner of ``name`` if nobody is; return the other owner when
        someone else already is (and change nothing), else None."""
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO names (name, owner, claimed_at) VALUES (?, ?, ?)",
                      (name, owner, time.time()))
            held = c.execute("SELECT owner FROM names WHERE name = ?", (name,)).fetchone()[0]
        return None if held == owner else held

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
                       worker, token, jdir / "submission", jdir, row["owner"])

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

    def mark_published(self, job_id: str, verdict: dict | None = None) -> None:
        """Mark the job published; ``verdict`` (a private split's: what the Ladder lets its owner
        know, ``results.published.owner_verdict``) replaces the pending one in its result."""
        now = time.time()
        with self._tx() as c:
            if verdict is not None:
                row = c.execute("SELECT result FROM jobs WHERE id = ?", (job_id,)).fetchone()
                result = {**(json.loads(row[0]) if row is not None and row[0] else {}), "verdict": verdict}
                c.execute("UPDATE jobs SET result = ? WHERE id = ?", (json.dumps(result), job_id))
            c.execute("UPDATE jobs SET published = 1, updated_at = ? WHERE id = ?", (now, job_id))
            _event(c, job_id, now, "published")

    def refuse_publication(self, job_id: str, error: str) -> None:
        """A done job whose results the store refused: failed, never retried."""
        now = time.time()
        with self._tx() as c:
            c.execute("UPDATE jobs SET status = 'failed', error = ?, updated_at = ? "
                      "WHERE id = ? AND status = 'done' AND published = 0", (f"not published: {error}", now, job_id))
            _event(c, job_id, now, "publish_refused", detail=error)

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
            "owner": row["owner"],
        }
        if with_log:
            out["log"] = joblog.tail(self.job_dir(job_id) / "job.log", LOG_LIMIT)
        return out

    def events(self, job_id: str | None = None) -> list[dict]:
        with self._conn() as c:
            sql = "SELECT * FROM events" + (" WHERE job_id = ?" if job_id else "") + " ORDER BY seq"
            return [dict(r) for r in c.execute(sql, (job_id,) if job_id else ())]

    def counts(self) -> dict:
        with self._conn() as c:
            got = dict(c.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {s: got.get(s, 0) for s in STATUSES}
