"""Process model: a small TF-free API, TF workers that may die and are replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from service_helpers import REPO, _wait_for, holding_jobs, mlp_config, wait_finished

pytestmark = pytest.mark.slow


def _pool_children(service) -> list[psutil.Process]:
    """The Celery pool processes (grandchildren of ``autoinit serve``) that run jobs."""
    server = psutil.Process(service.proc.pid)
    mains = [p for p in server.children() if "spawn_main" in " ".join(p.cmdline())]
    return [child for main in mains for child in main.children()]


def _wait_running(client: httpx.Client, job_id: str, attempt: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] == "running" and job["attempts"] == attempt:
            return job
        assert job["status"] in ("queued", "running"), job
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} never ran attempt {attempt}")


def _submit(client: httpx.Client) -> str:
    answer = client.post("/initialize", files={"model": ("held.json", json.dumps(mlp_config("held")))})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _kill_job_process(service) -> int:
    children = _pool_children(service)
    assert len(children) == 1, children
    os.kill(children[0].pid, signal.SIGKILL)
    return children[0].pid


def test_api_process_never_imports_tensorflow(client, service, tmp_path):
    job = client.post("/initialize?wait=90", json=mlp_config()).json()
    assert job["status"] == "succeeded"
    client.get(f"/jobs/{job['id']}/figure")
    health = client.get("/healthz").json()
    assert health["tensorflow_imported"] is False
    assert health["pid"] == service.proc.pid
    mapped = {m.path for m in psutil.Process(health["pid"]).memory_maps()}
    assert not [path for path in mapped if "tensorflow" in path], "libtensorflow is mapped"
    # The workers, by contrast, do load it.
    worker_maps = {m.path for m in _pool_children(service)[0].memory_maps()}
    assert any("tensorflow" in path for path in worker_maps)

    probe = (
        "import sys; from server.app import create_app; from server.settings import Settings; "
        f"create_app(Settings(data_dir={str(tmp_path)!r})); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_api_process_stays_small(client):
    client.get("/openapi.json")
    rss = client.get("/healthz").json()["rss_bytes"]
    assert rss is not None and rss < 150 * 2**20, f"API RSS is {rss / 2**20:.0f} MiB"


def test_healthz_answers_while_a_worker_computes(client, service):
    # Latency figures live in benchmarks/bench_service.py; here: it answers at all
    # (within a hang guard) while the only worker is busy with a held job.
    with holding_jobs(service.hold_file):
        job_id = _submit(client)
        _wait_running(client, job_id, attempt=1)
        for _ in range(10):
            assert client.get("/healthz", timeout=10).status_code == 200
        assert client.get(f"/jobs/{job_id}").json()["status"] == "running"
    assert wait_finished(client, job_id, timeout=180)["status"] == "succeeded"


def test_readyz_names_a_worker_that_answers(client):
    ready = _wait_for(f"{client.base_url}/readyz", 120)  # a busy worker may miss one ping
    body = ready.json()
    assert body["status"] == "ready" and body["mode"] == "embedded"
    assert body["workers"] and body["workers"][0].startswith("autoinit-")


def test_job_whose_worker_is_killed_once_succeeds_on_its_second_attempt(client, service):
    with holding_jobs(service.hold_file):
        job_id = _submit(client)
        _wait_running(client, job_id, attempt=1)
        killed = _kill_job_process(service)
        _wait_running(client, job_id, attempt=2)
    job = wait_finished(client, job_id, timeout=240)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert killed not in [p.pid for p in _pool_children(service)]


def test_job_whose_worker_is_killed_twice_fails_with_a_reason_and_later_jobs_succeed(client, service):
    with holding_jobs(service.hold_file):
        job_id = _submit(client)
        _wait_running(client, job_id, attempt=1)
        _kill_job_process(service)
        _wait_running(client, job_id, attempt=2)
        _kill_job_process(service)
    job = wait_finished(client, job_id, timeout=240)
    assert job["status"] == "failed" and job["attempts"] == 2, job
    assert job["error"]["title"] == "The worker stopped during this job"
    assert "2 times" in job["error"]["detail"] and "memory" in job["error"]["detail"]
    assert client.get(f"/jobs/{job_id}/model").status_code == 409

    later = client.post("/initialize?wait=120", json=mlp_config("after_the_crash")).json()
    assert later["status"] == "succeeded", later
    assert later["attempts"] == 1


def test_deleting_a_running_job_stops_its_computation(client, service):
    with holding_jobs(service.hold_file):
        job_id = _submit(client)
        _wait_running(client, job_id, attempt=1)
        (computing,) = _pool_children(service)
        assert client.delete(f"/jobs/{job_id}").status_code == 204
        computing.wait(timeout=60)  # raises psutil.TimeoutExpired if it keeps computing
    assert client.get(f"/jobs/{job_id}").status_code == 404
    later = client.post("/initialize?wait=120", json=mlp_config("after_the_delete")).json()
    assert later["status"] == "succeeded", later
    assert computing.pid not in [p.pid for p in _pool_children(service)]


def test_metrics_report_requests_latency_queue_and_outcomes(client):
    job = client.post("/initialize?wait=90", json=mlp_config("metered")).json()
    assert job["status"] == "succeeded"
    text = client.get("/metrics").text
    assert 'autoinit_http_requests_total{method="POST",route="/initialize",status="200"}' in text
    assert (
        'autoinit_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/initialize"}' in text
    )
    assert 'autoinit_http_request_duration_seconds_count{method="POST",route="/initialize"}' in text
    assert 'autoinit_jobs{status="queued"}' in text
    succeeded = [
        line
        for line in text.splitlines()
        if line.startswith('autoinit_jobs_finished_total{outcome="succeeded"}')
    ]
    assert succeeded and float(succeeded[0].split()[-1]) >= 1
    assert "autoinit_job_duration_seconds_count" in text
