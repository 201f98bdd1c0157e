"""The durable job store: one SQLite file in the data directory.

The API process owns it. Workers never write here (they may run on other
hosts); they report through the Celery result backend and the API mirrors
what they report into this store (see `server.tracking`). Records survive an
API restart and expire ``ttl`` seconds after they were created.

Example:
    >>> store = JobStore(Path("/tmp/jobs.sqlite3"), ttl=3600)
    >>> job = store.create(options={"seed": 0}, filename="mlp.json")
    >>> store.update(job.id, status=JobState.RUNNING, progress=0.5)
    True
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.protocol import JobState

__all__ = ["ACTIVE", "STATUSES", "TERMINAL", "JobRecord", "JobStore"]

STATUSES = tuple(state.value for state in JobState)
TERMINAL = frozenset(state.value for state in JobState if state.finished)
ACTIVE = frozenset(STATUSES) - TERMINAL

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    stage TEXT NOT NULL DEFAULT 'queued',
    error_title TEXT,
    error_detail TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    options TEXT NOT NULL DEFAULT '{}',
    model TEXT NOT NULL DEFAULT '{}',
    filename TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_expires ON jobs(expires_at);
"""
_JSON_FIELDS = ("warnings", "options", "model")
_FIELDS = (
    "status",
    "progress",
    "stage",
    "error_title",
    "error_detail",
    "warnings",
    "options",
    "model",
    "filename",
    "attempts",
    "started_at",
    "finished_at",
)


@dataclass
class JobRecord:
    """One job as stored. ``model`` holds the upload's summary (name, layers)."""

    id: str
    status: str  # a `JobState` value
    progress: float = 0.0
    stage: str = JobState.QUEUED.value
    error_title: str | None = None
    error_detail: str | None = None
    warnings: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    filename: str | None = None
    attempts: int = 0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    expires_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class JobStore:
    """Thread-safe access to the jobs table (one connection, WAL journal)."""

    def __init__(self, path: Path, ttl: float) -> None:
        self.path = Path(path)
        self.ttl = ttl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(
        self,
        *,
        options: dict[str, Any],
        model: dict[str, Any] | None = None,
        filename: str | None = None,
    ) -> JobRecord:
        now = time.time()
        job = JobRecord(
            id=uuid.uuid4().hex,
            status=JobState.QUEUED.value,
            options=options,
            model=model or {},
            filename=filename,
            created_at=now,
            expires_at=now + self.ttl,
        )
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO jobs (id, status, stage, options, model, filename, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.status,
                    job.stage,
                    json.dumps(options),
                    json.dumps(job.model),
                    filename,
                    now,
                    job.expires_at,
                ),
            )
        return job

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row) if row is not None else None

    def update(self, job_id: str, **changes: Any) -> bool:
        """Set the given columns (names as in `JobRecord`) of a job that has not
        finished: a finished job's record no longer changes, so of two callers
        that both saw it finish only the first records it. True if it changed."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"Unknown job fields {sorted(unknown)}; expected some of {_FIELDS}.")
        if not changes:
            return False
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in changes.items()]
        assignments = ", ".join(f"{name} = ?" for name in changes)
        active = tuple(sorted(ACTIVE))
        with self._lock, self._db:
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE id = ? AND status IN ({', '.join('?' * len(active))})",
                (*values, job_id, *active),
            )
        return cursor.rowcount > 0

    def delete(self, job_id: str) -> bool:
        with self._lock, self._db:
            cursor = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return cursor.rowcount > 0

    def active_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({', '.join('?' * len(ACTIVE))}) ORDER BY created_at",
                tuple(sorted(ACTIVE)),
            ).fetchall()
        return [row["id"] for row in rows]

    def expired_ids(self, now: float | None = None) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE expires_at <= ?", (now or time.time(),)
            ).fetchall()
        return [row["id"] for row in rows]

    def all_ids(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs").fetchall()
        return {row["id"] for row in rows}

    def count_by_status(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        counts.update({row["status"]: row["n"] for row in rows})
        return counts


def _record(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name])
    return JobRecord(**data)
