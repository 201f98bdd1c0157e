"""HTTP surface: API keys, CORS, OpenAPI, static files, and a schemathesis fuzz run.

These run against API-only servers (``--workers 0``): no TensorFlow needed.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from service_helpers import ServiceProcess, mlp_config


@pytest.fixture(scope="module")
def keyed_api(tmp_path_factory):
    api = ServiceProcess(
        tmp_path_factory.mktemp("keys") / "data",
        "--workers",
        "0",
        env={"AUTOINIT_API_KEYS": "first-key, second-key", "AUTOINIT_CORS_ORIGINS": "https://page.example"},
    )
    api.wait_healthy()
    yield api
    api.stop()


JOB_TTL = 6.0  # seconds: room for a POST and a GET on a loaded machine before it expires


@pytest.fixture(scope="module")
def open_api(tmp_path_factory):
    """No API keys, jobs expire after JOB_TTL seconds, a page in frontend_dir."""
    root = tmp_path_factory.mktemp("open")
    page = root / "frontend"
    page.mkdir()
    (page / "index.html").write_text("<html><body>AutoInit page</body></html>")
    api = ServiceProcess(
        root / "data",
        "--workers",
        "0",
        env={"AUTOINIT_JOB_TTL": str(JOB_TTL), "AUTOINIT_FRONTEND_DIR": str(page)},
    )
    api.wait_healthy()
    yield api
    api.stop()


def test_api_keys_are_required_when_configured(keyed_api):
    with httpx.Client(base_url=keyed_api.url, timeout=30) as client:
        body = {"model": ("m.json", json.dumps(mlp_config()))}
        refused = client.post("/initialize", files=body)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert "X-API-Key" in refused.json()["detail"]
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/jobs/abc", headers={"X-API-Key": "third-key"})
        assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]

        queued = client.post("/initialize", files=body, headers={"X-API-Key": "first-key"})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        bearer = client.get(f"/jobs/{job_id}", headers={"Authorization": "Bearer second-key"})
        assert bearer.status_code == 200 and bearer.json()["status"] == "queued"

        for open_path in ("/healthz", "/metrics", "/openapi.json"):
            assert client.get(open_path).status_code == 200, open_path


def test_api_keys_are_not_needed_when_none_are_configured(open_api):
    with httpx.Client(base_url=open_api.url, timeout=30) as client:
        answer = client.post("/initialize", json=mlp_config())
        assert answer.status_code == 202 and answer.json()["status"] == "queued"


def test_jobs_and_their_files_expire_after_the_ttl(open_api):
    with httpx.Client(base_url=open_api.url, timeout=30) as client:
        job = client.post("/initialize", json=mlp_config()).json()
        upload = open_api.data_dir / "artifacts" / job["id"] / "upload.json"
        assert client.get(f"/jobs/{job['id']}").status_code == 200 and upload.is_file()
        assert job["expires_at"] == pytest.approx(job["created_at"] + JOB_TTL)
        time.sleep(JOB_TTL + 0.5)
        gone = client.get(f"/jobs/{job['id']}")
        assert gone.status_code == 404 and "expired" in gone.json()["detail"]
        assert not upload.exists()


def test_the_page_is_served_at_the_root(open_api):
    page = httpx.get(open_api.url + "/", timeout=30)
    assert page.status_code == 200 and "AutoInit page" in page.text
    assert httpx.get(open_api.url + "/healthz", timeout=30).json()["status"] == "ok"


def test_readyz_is_503_without_workers(open_api):
    ready = httpx.get(open_api.url + "/readyz", timeout=30)
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"


def test_cors_allows_the_configured_origin_only(keyed_api):
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            keyed_api.url + "/initialize",
            timeout=30,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-API-Key",
            },
        )

    assert preflight("https://page.example").headers["access-control-allow-origin"] == "https://page.example"
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers


def test_openapi_docs_and_plotly_are_served(open_api):
    spec = httpx.get(open_api.url + "/openapi.json", timeout=30).json()
    assert {
        "/initialize",
        "/jobs/{job_id}",
        "/jobs/{job_id}/model",
        "/jobs/{job_id}/traces",
        "/jobs/{job_id}/traces.csv",
        "/jobs/{job_id}/figure",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    body = spec["paths"]["/initialize"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    params = {p["name"] for p in spec["paths"]["/initialize"]["post"]["parameters"]}
    assert {
        "wait",
        "input_mean",
        "input_var",
        "signal_variance",
        "distribution",
        "seed",
        "probe_batch",
        "baselines",
    } <= params
    assert httpx.get(open_api.url + "/docs", timeout=30).status_code == 200
    plotly = httpx.get(open_api.url + "/static/plotly.min.js", timeout=30)
    assert plotly.status_code == 200 and "plotly" in plotly.text[:2000].lower()


def test_no_request_the_schema_allows_makes_the_server_fail(open_api):
    """A bounded schemathesis run over every operation. Invariant: each answer is a
    success or a 4xx problem+json, never a 5xx (``/readyz`` documents its 503)."""
    schema = schemathesis.openapi.from_url(open_api.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        uploads = operation.path == "/initialize"

        @given(case=operation.as_strategy())
        @settings(
            max_examples=150 if uploads else 30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # holding requests open only slows the run down
            response = case.call(base_url=open_api.url, timeout=30)
            if case.path == "/readyz":  # 503 is its documented answer without workers
                assert response.status_code == 503
                return
            status, kind = response.status_code, response.headers.get("content-type", [""])[0]
            assert status < 400 or (status < 500 and kind.startswith("application/problem+json")), (
                case.method,
                case.path,
                status,
                response.text[:500],
            )

        no_server_error()
