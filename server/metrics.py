"""Prometheus metrics for ``GET /metrics``: requests, latency, queue, outcomes.

Each app gets its own registry (no process-global state), so tests and
several apps in one process do not collide.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]


class ServiceMetrics:
    """The service's counters; `render` returns the Prometheus text format."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise here
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "autoinit_http_requests_total",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "autoinit_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.jobs = Gauge(
            "autoinit_jobs",
            "Jobs in the store, by status (queued = queue depth).",
            ["status"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "autoinit_jobs_finished_total",
            "Jobs that finished since the API started.",
            ["outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "autoinit_uploads_refused_total",
            "Uploads refused before queueing, by HTTP status.",
            ["status"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "autoinit_job_duration_seconds",
            "Time from upload to a finished job.",
            registry=self.registry,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, counts: dict[str, int]) -> bytes:
        for status, count in counts.items():
            self.jobs.labels(status).set(count)
        return generate_latest(self.registry)
