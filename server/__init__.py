"""AutoInit as a service: an HTTP API that queues uploads for TensorFlow workers.

Rooms:

* `settings` - every knob, read once from ``AUTOINIT_*`` environment variables.
* `schemas` - the request/response models; the OpenAPI schema is the contract.
* `problems` - RFC 9457 ``application/problem+json`` errors.
* `jobs` - the durable job store (SQLite in the data directory).
* `artifacts` - where finished models, configs and traces are written.
* `intake` - untrusted upload -> validated config (runs in the API, no TF).
* `tracking` - mirrors worker reports (Celery result backend) into the job store.
* `metrics` - Prometheus counters for ``GET /metrics``.
* `tasks` - the Celery app and its one task (the task body imports TF lazily).
* `worker` - the TensorFlow side: device setup and the job itself.
* `app` - the FastAPI application (never imports TensorFlow).
* `serve` - the ``autoinit serve`` / ``autoinit worker`` entry points.
"""
