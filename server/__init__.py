"""AutoInit as a service: an HTTP API that queues uploads for TensorFlow workers.

Rooms:

* `settings` - every knob, read once from ``AUTOINIT_*`` environment variables.
* `protocol` - what API and workers agree on: task, queue, job states, outcomes (a leaf).
* `schemas` - the request/response models; the OpenAPI schema is the contract.
* `problems` - RFC 9457 ``application/problem+json`` errors.
* `text` - unpaired surrogates: found at intake, escaped in answers.
* `jobs` - the durable job store (SQLite in the data directory).
* `artifacts` - where finished models, configs and traces are written.
* `uploads` - the request body or multipart form -> model bytes and options.
* `intake` - untrusted upload -> validated config (runs in the API, no TF).
* `tracking` - mirrors worker reports (Celery result backend) into the job store.
* `metrics` - Prometheus counters for ``GET /metrics``.
* `service` - the object the routes share (stores, queue, metrics) and its tracker thread.
* `middleware` - ASGI middlewares: body size and time limits, request metrics, 500 guard.
* `connections` - uvicorn's HTTP/1.1 protocol with problem+json 400s and a head timeout.
* `api` - `api.deps` (shared dependencies) and `api.routes` (jobs, results, operations,
  options, page).
* `app` - `create_app`: wiring only (never imports TensorFlow).
* `tasks` - the Celery app and its one task (the task body imports TF lazily).
* `worker` - the TensorFlow side: device setup and the job itself.
* `serve` - the ``autoinit serve`` / ``autoinit worker`` entry points.
"""
