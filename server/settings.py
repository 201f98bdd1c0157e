"""Every knob of the service, in one class read from ``AUTOINIT_*`` variables.

``autoinit serve`` / ``autoinit worker`` flags override the environment; the
API, the serve process and the workers all build the same `Settings`.

Example:
    >>> Settings(data_dir="/tmp/ai", max_layers=100).embedded
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "machine_memory_bytes"]


def machine_memory_bytes() -> int:
    """Memory this process may use: the container's cgroup limit when one is
    set, else the machine's physical memory."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < physical:  # "max" or a huge number: no limit
            return int(text)
    return physical


def _default_worker_memory_budget() -> int:
    return machine_memory_bytes() // 4


class Settings(BaseSettings):
    """Service configuration; each field is the variable ``AUTOINIT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="AUTOINIT_", extra="ignore")

    data_dir: Path = Field(
        Path("autoinit-data"),
        description="Job database, embedded broker queue and default artifact store.",
    )
    broker_url: str | None = Field(
        None,
        description="Celery broker, e.g. redis://host:6379/0. Unset: the embedded "
        "filesystem queue under data_dir (no external service).",
    )
    result_backend: str | None = Field(
        None,
        description="Where workers report progress and outcomes. Unset: files under "
        "data_dir when embedded, the broker's Redis otherwise.",
    )
    artifact_url: str | None = Field(
        None,
        description="Directory (or fsspec URL, e.g. s3://bucket/prefix) for models, "
        "configs and traces. Unset: data_dir/artifacts. API and workers must share it.",
    )
    api_keys: str = Field("", description="Comma-separated API keys; empty means no authentication.")
    cors_origins: str = Field("", description="Comma-separated allowed CORS origins.")
    max_upload_bytes: int = Field(50_000_000, gt=0, description="Larger uploads get 413.")
    max_data_bytes: int = Field(
        50_000_000,
        gt=0,
        description="Largest training-data upload (the multipart 'data' field: an .npz with "
        "arrays x and y), as sent and with its arrays uncompressed; larger gets 413.",
    )
    max_layers: int = Field(5000, gt=0, description="Layers per model, nested ones included.")
    max_params: int = Field(200_000_000, gt=0, description="Parameters per model.")
    max_depth: int = Field(64, gt=0, description="JSON nesting depth of a config.")
    job_time_limit: float = Field(900.0, gt=0, description="Seconds one job may run before it is stopped.")
    job_ttl: float = Field(7 * 24 * 3600.0, gt=0, description="Seconds a job and its artifacts are kept.")
    max_attempts: int = Field(
        2, ge=1, description="Runs of a job whose worker died (OOM, kill) before it fails."
    )
    max_wait: float = Field(600.0, ge=0, description="Longest ?wait= a request may hold.")
    max_train_steps: int = Field(
        100,
        ge=0,
        description="Largest train_steps option a job may ask for (each step trains one copy "
        "of the model per initialization); 0 turns training off.",
    )
    worker_memory_budget: int = Field(
        default_factory=_default_worker_memory_budget,
        gt=0,
        description="Bytes one job's probe may use (autoinit.probe's memory_budget_bytes: the "
        "probe batch runs in micro-batches that fit). A job whose probe needs more even one "
        "example at a time is refused with 422 at upload. Unset: a quarter of the machine's "
        "(or the container's) memory; lower it when several workers share a host.",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a request's line and headers may take to arrive, "
        "counted from their first byte or from when the connection opened; then 408 and the "
        "connection is closed (applied by `autoinit serve`).",
    )
    body_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds a request body may take to arrive after its headers; "
        "then 408 and the connection is closed.",
    )
    keep_alive_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds an idle keep-alive connection stays open between "
        "requests (uvicorn's timeout_keep_alive; applied by `autoinit serve`).",
    )
    max_tasks_per_child: int = Field(
        50, ge=1, description="Jobs a TensorFlow worker process runs before it is replaced."
    )
    frontend_dir: Path | None = Field(
        None, description="Static page served at /. Unset: the repository's frontend/."
    )
    gpu: int | None = Field(
        None,
        ge=0,
        description="Worker processes pin this GPU: its index among the GPUs the process "
        "sees (after CUDA_VISIBLE_DEVICES). Unset: every visible GPU (serve and "
        "`worker --gpu` already give each worker one through CUDA_VISIBLE_DEVICES).",
    )

    hold_file: Path | None = Field(
        None,
        description="Testing only: while this file exists, a job waits after building its "
        "model (it still counts against the time limit), so tests can hold a job in the "
        "running state without depending on how fast the machine is. Unset in production.",
    )

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: the queue lives in data_dir."""
        return not self.broker_url

    @property
    def api_key_set(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def artifact_location(self) -> str:
        return self.artifact_url or str(self.data_dir.resolve() / "artifacts")

    @property
    def job_db_path(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    @property
    def resolved_frontend_dir(self) -> Path | None:
        folder = self.frontend_dir or Path(__file__).resolve().parent.parent / "frontend"
        return folder if folder.is_dir() else None

    def upload_limits(self):  # -> autoinit.upload.UploadLimits
        from autoinit.upload import UploadLimits

        return UploadLimits(
            max_bytes=self.max_upload_bytes,
            max_layers=self.max_layers,
            max_params=self.max_params,
            max_depth=self.max_depth,
        )
