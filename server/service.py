"""The service object the routes share, and its background tracker thread.

`Service` holds the settings, the job store, the artifact store, the Celery
app and the metrics; its methods are the work the routes call: submit a
validated upload, refresh a job, wait for one to finish. The routes reach it
through `server.api.deps.ServiceDep`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

from fastapi.concurrency import run_in_threadpool

from autoinit.options import InitializeOptions
from server.artifacts import ArtifactStore
from server.intake import ValidatedUpload
from server.jobs import JobRecord, JobStore
from server.metrics import ServiceMetrics
from server.problems import ProblemError
from server.protocol import JobState
from server.settings import Settings
from server.tasks import enqueue, make_celery
from server.tracking import JobTracker

__all__ = ["Service"]

log = logging.getLogger("autoinit.server")

_TRACK_EVERY = 1.0  # seconds between background refreshes of the active jobs
_PURGE_EVERY = 60.0  # seconds between sweeps of expired jobs
_POLL_EVERY = 0.2  # seconds between refreshes while a request waits for its job


class Service:
    """What the routes share: settings, stores, the queue and metrics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.job_db_path, ttl=settings.job_ttl)
        self.artifacts = ArtifactStore(settings.artifact_location)
        self.celery = make_celery(settings)
        self.metrics = ServiceMetrics()
        self.tracker = JobTracker(settings, self.store, self.artifacts, self.celery, self.metrics)
        self.limits = settings.upload_limits()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the background tracker ----------------------------------------------

    def start(self) -> None:
        """Start mirroring active jobs and purging expired ones in the background."""
        self._thread = threading.Thread(target=self._track, name="autoinit-tracker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()

    def _track(self) -> None:
        next_purge = 0.0
        while not self._stop.wait(_TRACK_EVERY):
            try:
                self.tracker.refresh_active()
                if time.monotonic() >= next_purge:
                    self.tracker.purge_expired()
                    next_purge = time.monotonic() + _PURGE_EVERY
            except Exception:  # keep tracking whatever one refresh did
                log.exception("background job refresh failed")

    # --- the work routes call --------------------------------------------------

    def submit(
        self,
        upload: ValidatedUpload,
        options: InitializeOptions,
        filename: str | None,
        training_data: bytes | None = None,
    ) -> JobRecord:
        """Store and queue a validated upload (and its validated training data,
        ``data.npz``); 503 when the queue is unavailable."""
        stored_options = options.model_dump(mode="json")
        config = json.dumps(upload.config).encode()  # before the record: it can fail no more
        job = self.store.create(options=stored_options, model=upload.summary, filename=filename)
        try:
            self.artifacts.put_bytes(job.id, "upload.json", config)
            if training_data is not None:
                self.artifacts.put_bytes(job.id, "data.npz", training_data)
            enqueue(self.celery, job.id, stored_options)
        except Exception as error:  # the record says why; the caller gets 503
            log.exception("could not store or queue job %s", job.id)
            self.store.update(
                job.id,
                status=JobState.FAILED,
                stage=JobState.FAILED.value,
                error_title="The queue is unavailable",
                error_detail=f"{type(error).__name__}: {error}",
                finished_at=time.time(),
            )
            raise ProblemError(
                503,
                "The queue is unavailable",
                f"The job could not be queued ({type(error).__name__}: {error}). Try again later.",
            ) from None
        return job

    async def refreshed(self, job_id: str) -> JobRecord | None:
        """The job brought up to date with its worker's reports; None if unknown."""
        return await run_in_threadpool(self.tracker.refresh, job_id)

    async def wait(self, job: JobRecord, seconds: float | None) -> JobRecord:
        """The job once finished, or as it is after ``seconds`` (capped at ``max_wait``)."""
        wait = min(seconds, self.settings.max_wait) if seconds else 0.0
        deadline = time.monotonic() + wait
        while not job.finished and time.monotonic() < deadline:
            await asyncio.sleep(min(_POLL_EVERY, max(0.0, deadline - time.monotonic())))
            job = await self.refreshed(job.id) or job
        return job
