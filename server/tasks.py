"""The Celery app and its one task, the same in both modes.

* Embedded (no broker configured): kombu's filesystem transport, with the
  queue in ``<data_dir>/queue`` and results in ``<data_dir>/results``. No
  external service; API and workers share the data directory.
* Distributed: ``--broker redis://...``; results go to the same Redis, and
  ``autoinit worker --broker redis://...`` runs on each GPU host.

Workers report back only through the result backend (``update_state`` while
running, the return value at the end; their shapes are in `server.protocol`);
the API mirrors that into its job store. The task body imports TensorFlow lazily, so the API can import this
module to send jobs.

Delivery guarantees: ``acks_late`` + ``reject_on_worker_lost`` put a job back
on the queue when its worker process dies; the attempt counter the worker
keeps in its progress reports bounds how often that happens
(``Settings.max_attempts``). Soft/hard time limits stop runaway jobs.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from server.protocol import HARD_LIMIT_GRACE, QUEUE, TASK_NAME
from server.settings import Settings

__all__ = ["make_celery", "enqueue"]


def _embedded_transport_options(settings: Settings) -> dict[str, Any]:
    queue = settings.queue_dir.resolve()
    folders = {
        "data_folder_in": queue / "messages",
        "data_folder_out": queue / "messages",
        "processed_folder": queue / "processed",
        "control_folder": queue / "control",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {key: str(path) for key, path in folders.items()}
    options.update(store_processed=False, polling_interval=0.2)
    return options


def make_celery(settings: Settings) -> Celery:
    """The configured Celery app with the ``autoinit.initialize`` task."""
    app = Celery("autoinit", set_as_current=False)
    hard_limit = settings.job_time_limit + HARD_LIMIT_GRACE
    if settings.embedded:
        broker = "filesystem://localhost//"  # kombu warns when no host is named
        transport = _embedded_transport_options(settings)
        results_dir = (settings.data_dir / "results").resolve()
        results_dir.mkdir(parents=True, exist_ok=True)
        backend = settings.result_backend or f"file://{results_dir}"
    else:
        broker = settings.broker_url
        # Redis re-delivers unacknowledged jobs after the visibility timeout:
        # keep it above the longest job so a running job is not run twice.
        transport = {"visibility_timeout": int(hard_limit * 2 + 300)}
        backend = settings.result_backend or settings.broker_url
    app.conf.update(
        broker_url=broker,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        result_backend=backend,
        result_backend_transport_options=transport if not settings.embedded else {},
        result_expires=int(settings.job_ttl),
        result_extended=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.job_time_limit,
        task_time_limit=hard_limit,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=settings.max_tasks_per_child,
        # Children import TensorFlow when they start, which takes seconds.
        worker_proc_alive_timeout=180,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_enable_remote_control=True,
    )

    @app.task(name=TASK_NAME, bind=True)
    def initialize(self, job_id: str, options: dict[str, Any]) -> dict[str, Any]:
        from server.worker import run_job  # TensorFlow lives on this side only

        return run_job(self, settings, job_id, options)

    return app


def enqueue(app: Celery, job_id: str, options: dict[str, Any]) -> None:
    """Queue a job; its Celery task id is the job id."""
    app.send_task(TASK_NAME, args=(job_id, options), task_id=job_id, queue=QUEUE)
