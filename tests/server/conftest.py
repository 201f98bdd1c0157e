"""Real service processes for the server tests.

``service`` is one embedded-mode server (API + one TensorFlow worker process)
on a free loopback port with a temporary data directory, shared by the whole
session (per xdist worker) to keep the suite fast on small machines. Tests
that need their own processes (restart, Redis, API keys) start them with
`service_helpers.ServiceProcess` / `start_worker`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_helpers import MAX_LAYERS, MAX_UPLOAD_BYTES, ServiceProcess  # noqa: E402


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The shared embedded-mode server: API plus one TensorFlow worker."""
    data_dir = tmp_path_factory.mktemp("service") / "data"
    server = ServiceProcess(
        data_dir,
        "--workers",
        "1",
        env={
            "AUTOINIT_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
            "AUTOINIT_MAX_LAYERS": str(MAX_LAYERS),
            # Never recycled mid-session: which test's job would be a process's
            # 50th (the default) depends on how xdist hands out tests.
            "AUTOINIT_MAX_TASKS_PER_CHILD": "100000",
        },
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture()
def client(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=120) as http:
        yield http
