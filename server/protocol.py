"""What the API and the workers agree on: the task, its queue, job states and outcomes.

A leaf module (it imports nothing from `server`), so the API side
(`tasks`, `tracking`, `jobs`) and the TensorFlow side (`worker`) both read it
without importing each other. Outcomes travel through Celery's JSON result
backend as plain dicts; `to_dict` / `outcome_from_dict` are the only places
that know their shape.

Example:
    >>> JobFailed("The upload is gone", "It was deleted.", attempt=1).to_dict()["outcome"]
    'failed'
    >>> outcome_from_dict({"outcome": "succeeded", "attempt": 1}).state
    <JobState.SUCCEEDED: 'succeeded'>
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "HARD_LIMIT_GRACE",
    "PROGRESS_STATE",
    "QUEUE",
    "TASK_NAME",
    "JobFailed",
    "JobOutcome",
    "JobState",
    "JobSucceeded",
    "ProgressReport",
    "outcome_from_dict",
]

#: Celery task name of the one job the workers run.
TASK_NAME = "autoinit.initialize"
#: Celery queue the API sends jobs to and workers consume.
QUEUE = "autoinit"
#: Celery state name of the worker's progress reports.
PROGRESS_STATE = "PROGRESS"
#: Seconds after the soft time limit before the worker process is killed outright.
HARD_LIMIT_GRACE = 30.0


class JobState(str, enum.Enum):
    """A job's status: queued, running, then succeeded or failed."""

    # A str mixin (StrEnum needs Python 3.11): JobState.FAILED == "failed".

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


@dataclass(frozen=True)
class ProgressReport:
    """What a running worker reports (``update_state(meta=...)``)."""

    progress: float
    stage: str
    attempt: int
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"progress": self.progress, "stage": self.stage, "attempt": self.attempt, "pid": self.pid}

    @classmethod
    def from_dict(cls, data: Any) -> ProgressReport | None:
        """The report in ``data``, or None when ``data`` is not one."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                progress=min(1.0, max(0.0, float(data.get("progress", 0.0)))),
                stage=str(data.get("stage", JobState.RUNNING.value)),
                attempt=int(data.get("attempt", 1)),
                pid=data.get("pid"),
            )
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class JobSucceeded:
    """The worker wrote the model, config and traces; ``model`` is their summary."""

    attempt: int
    warnings: list[str] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    state: ClassVar[JobState] = JobState.SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.state.value,
            "attempt": self.attempt,
            "warnings": list(self.warnings),
            "model": dict(self.model),
        }


@dataclass(frozen=True)
class JobFailed:
    """The job ended without results; ``title`` and ``detail`` say why."""

    title: str
    detail: str
    attempt: int
    warnings: list[str] = field(default_factory=list)
    state: ClassVar[JobState] = JobState.FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.state.value,
            "error": {"title": self.title, "detail": self.detail},
            "attempt": self.attempt,
            "warnings": list(self.warnings),
        }


JobOutcome = JobSucceeded | JobFailed


def outcome_from_dict(data: Any, default_attempt: int = 1) -> JobOutcome | None:
    """The outcome a worker returned, or None when ``data`` is not one."""
    if not isinstance(data, dict) or data.get("outcome") not in (JobState.SUCCEEDED, JobState.FAILED):
        return None
    try:
        attempt = int(data.get("attempt", default_attempt))
    except (TypeError, ValueError):
        attempt = default_attempt
    warnings = [str(text) for text in data.get("warnings") or []]
    if data["outcome"] == JobState.SUCCEEDED:
        model = data.get("model")
        return JobSucceeded(attempt, warnings, dict(model) if isinstance(model, dict) else {})
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    return JobFailed(
        str(error.get("title", "The job failed")), str(error.get("detail", "")), attempt, warnings
    )
