"""Deployments: API restarts keep jobs; Redis-distributed workers; time limits."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import keras
import psutil
import pytest
from service_helpers import (
    ServiceProcess,
    free_port,
    holding_jobs,
    mlp_config,
    start_worker,
    stop_worker,
    wait_finished,
)

pytestmark = pytest.mark.slow

TIME_LIMIT = 20


@pytest.fixture(scope="module")
def embedded_worker(tmp_path_factory):
    """An ``autoinit worker`` on a data directory: a 20 s job time limit (the
    held job meets it; the others, ~1 s here, have room on a slow machine), and
    its TensorFlow process is replaced after every job. Jobs wait while
    ``hold_file`` exists."""
    data_dir = tmp_path_factory.mktemp("restart") / "data"
    data_dir.mkdir()
    hold_file = data_dir.parent / "hold"
    worker = start_worker(
        "--data-dir",
        str(data_dir),
        log_path=data_dir.parent / "worker.log",
        env={
            "AUTOINIT_JOB_TIME_LIMIT": str(TIME_LIMIT),
            "AUTOINIT_MAX_TASKS_PER_CHILD": "1",
            "AUTOINIT_HOLD_FILE": str(hold_file),
        },
    )
    yield SimpleNamespace(data_dir=data_dir, proc=worker, hold_file=hold_file)
    stop_worker(worker)


def _pool_pids(worker: subprocess.Popen) -> set[int]:
    return {child.pid for child in psutil.Process(worker.pid).children()}


def test_jobs_survive_an_api_restart_and_workers_are_recycled(embedded_worker, tmp_path):
    first = ServiceProcess(embedded_worker.data_dir, "--workers", "0", log_name="first.log")
    try:
        first.wait_ready()
        pool_before = _pool_pids(embedded_worker.proc)
        with httpx.Client(base_url=first.url, timeout=120) as client:
            job = client.post("/initialize?wait=120", json=mlp_config("before_restart")).json()
    finally:
        first.stop()
    assert job["status"] == "succeeded", job
    deadline = time.monotonic() + 30
    while _pool_pids(embedded_worker.proc) in (pool_before, set()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pool_before and _pool_pids(embedded_worker.proc).isdisjoint(pool_before)

    second = ServiceProcess(embedded_worker.data_dir, "--workers", "0", log_name="second.log")
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, timeout=120) as client:
            again = client.get(f"/jobs/{job['id']}").json()
            assert again == job
            path = tmp_path / "m.keras"
            path.write_bytes(client.get(f"/jobs/{job['id']}/model").content)
            assert keras.saving.load_model(path).name == "before_restart"
            after = client.post("/initialize?wait=120", json=mlp_config("after_restart")).json()
            assert after["status"] == "succeeded", after
    finally:
        second.stop()


def test_jobs_over_the_time_limit_are_stopped_with_a_reason(embedded_worker):
    api = ServiceProcess(embedded_worker.data_dir, "--workers", "0", log_name="limit.log")
    try:
        api.wait_ready()
        # The held job never finishes by itself, however fast the machine is.
        with httpx.Client(base_url=api.url, timeout=60) as client, holding_jobs(embedded_worker.hold_file):
            answer = client.post("/initialize", json=mlp_config("held"))
            job = wait_finished(client, answer.json()["id"], timeout=180)
    finally:
        api.stop()
    assert job["status"] == "failed", job
    assert job["error"]["title"] == "The job took too long"
    assert f"limit of {TIME_LIMIT} s" in job["error"]["detail"]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip(
            "redis-server is not installed (Debian: apt-get install -y redis-server); "
            "the distributed mode needs a real Redis"
        )
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


def test_distributed_mode_runs_jobs_on_a_separate_worker_through_redis(redis_url, tmp_path):
    artifacts = tmp_path / "shared-artifacts"
    # local:// goes through fsspec, the same code path as an s3:// store.
    artifact_url = f"local://{artifacts}"
    worker = start_worker(
        "--broker",
        redis_url,
        "--artifact-url",
        artifact_url,
        "--data-dir",
        str(tmp_path / "worker-data"),
        log_path=tmp_path / "redis-worker.log",
    )
    api = ServiceProcess(
        tmp_path / "api-data",
        "--workers",
        "0",
        "--broker",
        redis_url,
        "--artifact-url",
        artifact_url,
        log_name="redis-api.log",
    )
    try:
        ready = api.wait_ready()
        assert ready["mode"] == "distributed" and ready["workers"], ready
        with httpx.Client(base_url=api.url, timeout=120) as client:
            job = client.post("/initialize?wait=120", json=mlp_config("over_redis")).json()
            assert job["status"] == "succeeded", job
            path = tmp_path / "m.keras"
            path.write_bytes(client.get(f"/jobs/{job['id']}/model").content)
            assert keras.saving.load_model(path).name == "over_redis"
        assert (artifacts / job["id"] / "model.keras").is_file()
        assert not (Path(tmp_path / "api-data") / "queue").exists()
    finally:
        api.stop()
        stop_worker(worker)
