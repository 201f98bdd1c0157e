"""Mirror what workers report (Celery result backend) into the job store.

Workers may run on other hosts, so they never write the API's SQLite file;
they call ``update_state`` while running and return an outcome (the shapes
are `server.protocol.ProgressReport` and `server.protocol.JobOutcome`). The API
refreshes a job when it is asked about it and, in the background, every
active job once a second, so records and metrics move on their own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery

from server.artifacts import ArtifactStore
from server.jobs import JobRecord, JobStore
from server.metrics import ServiceMetrics
from server.protocol import (
    HARD_LIMIT_GRACE,
    PROGRESS_STATE,
    JobFailed,
    JobState,
    JobSucceeded,
    ProgressReport,
    outcome_from_dict,
)
from server.settings import Settings

__all__ = ["JobTracker"]

log = logging.getLogger("autoinit.server")


class JobTracker:
    """Refreshes job records from the result backend; purges expired jobs."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        artifacts: ArtifactStore,
        celery: Celery,
        metrics: ServiceMetrics,
    ) -> None:
        self.settings, self.store, self.artifacts = settings, store, artifacts
        self.celery, self.metrics = celery, metrics

    def refresh(self, job_id: str) -> JobRecord | None:
        """The job, brought up to date; None if unknown or expired (then deleted).

        The background thread and requests refresh the same jobs; a finish is
        recorded (and counted) by the first of them only, as ``JobStore.update``
        leaves a finished record alone."""
        job = self.store.get(job_id)
        if job is not None and job.expires_at <= time.time():
            self.delete(job_id)
            return None
        if job is None or job.finished:
            return job
        try:
            meta = self.celery.backend.get_task_meta(job_id)
        except Exception as error:  # a half-written result file: read it next time
            log.debug("cannot read result of %s yet: %s", job_id, error)
            return job
        changes = self._changes(job, meta.get("status"), meta.get("result"))
        if not changes and job.status == JobState.RUNNING and self._lost(job):
            changes = self._failure(
                job,
                "The job was lost",
                "No worker finished this job within its time limits; "
                "its worker stopped without reporting. Submit it again.",
            )
        if changes:
            changed = self.store.update(job_id, **changes)
            status = changes.get("status")
            if changed and status is not None and JobState(status).finished:
                self.metrics.outcomes.labels(status).inc()
                self.metrics.job_seconds.observe(max(0.0, time.time() - job.created_at))
                try:
                    self.celery.backend.forget(job_id)
                except Exception:  # the record is what counts; results expire anyway
                    pass
            job = self.store.get(job_id)
        return job

    def _lost(self, job: JobRecord) -> bool:
        bound = (self.settings.job_time_limit + HARD_LIMIT_GRACE) * self.settings.max_attempts + 120
        return job.started_at is not None and time.time() - job.started_at > bound

    def _changes(self, job: JobRecord, state: str | None, result: Any) -> dict[str, Any]:
        if state == PROGRESS_STATE:
            report = ProgressReport.from_dict(result)
            if report is None:
                return {}
            changes: dict[str, Any] = {
                "status": JobState.RUNNING,
                "progress": report.progress,
                "stage": report.stage,
                "attempts": report.attempt,
            }
            if job.started_at is None:
                changes["started_at"] = time.time()
            return changes
        if state == "SUCCESS":
            outcome = outcome_from_dict(result, default_attempt=job.attempts or 1)
            if isinstance(outcome, JobSucceeded):
                return {
                    "status": JobState.SUCCEEDED,
                    "progress": 1.0,
                    "stage": "done",
                    "warnings": outcome.warnings,
                    "attempts": outcome.attempt,
                    "model": {**job.model, **outcome.model},
                    "finished_at": time.time(),
                }
            if isinstance(outcome, JobFailed):
                return {
                    **self._failure(job, outcome.title, outcome.detail),
                    "warnings": outcome.warnings,
                    "attempts": outcome.attempt,
                }
            return self._failure(
                job, "The job failed", f"The worker returned an unknown outcome: {str(result)[:200]}"
            )
        if state == "FAILURE":
            return self._failure(job, *_describe_celery_failure(result, self.settings))
        if state == "REVOKED":
            return self._failure(job, "The job was cancelled", "The job was revoked.")
        return {}

    def _failure(self, job: JobRecord, title: str, detail: str) -> dict[str, Any]:
        return {
            "status": JobState.FAILED,
            "stage": JobState.FAILED.value,
            "error_title": title,
            "error_detail": detail,
            "finished_at": time.time(),
        }

    def refresh_active(self) -> None:
        for job_id in self.store.active_ids():
            self.refresh(job_id)

    def delete(self, job_id: str) -> bool:
        """Delete the record and files; a queued or running job is revoked.

        The files go before the record: whoever finds the record gone (a
        request racing the background sweep) finds the files gone too. Files
        a remote store fails to delete are logged; the record goes anyway (a
        request must get its answer, a sweep must reach the next job)."""
        job = self.store.get(job_id)
        if job is None:
            return False
        if not job.finished:
            try:
                # A running job's pool process is killed (its TensorFlow work with
                # it) and replaced; a queued one is skipped when it comes up.
                # SIGKILL, not SIGTERM: after a SIGTERM-terminated job the prefork
                # pool received later jobs but never ran them.
                self.celery.control.revoke(job_id, terminate=job.status == JobState.RUNNING, signal="SIGKILL")
            except Exception as error:  # best effort: the record goes regardless
                log.warning("could not revoke %s: %s", job_id, error)
        try:
            self.artifacts.delete(job_id)
        except Exception as error:  # a remote store's outage: the files stay, the record goes
            log.warning("could not delete the files of job %s: %s", job_id, error)
        self.store.delete(job_id)
        try:
            self.celery.backend.forget(job_id)
        except Exception:
            pass
        return True

    def purge_expired(self) -> int:
        expired = self.store.expired_ids()
        for job_id in expired:
            try:
                self.delete(job_id)
            except Exception:  # one job's failure must not keep the others from going
                log.exception("could not purge job %s", job_id)
        for job_id in self.artifacts.stale_job_ids(self.store.all_ids(), older_than=3600):
            self.artifacts.delete(job_id)
        return len(expired)


def _describe_celery_failure(result: Any, settings: Settings) -> tuple[str, str]:
    name = type(result).__name__
    if name == "TimeLimitExceeded":
        return (
            "The job took too long",
            f"The job ran past the hard limit of "
            f"{settings.job_time_limit + HARD_LIMIT_GRACE:g} s and its worker process "
            "was stopped.",
        )
    if name == "WorkerLostError":
        return (
            "The worker stopped during this job",
            f"The worker process running this job exited unexpectedly ({result}).",
        )
    return "The job failed", f"{name}: {result}"
