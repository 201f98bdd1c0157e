"""The app's rooms: importable routers, overridable dependencies, one options model.

These serve `server.app.create_app` in this process (``--workers 0``-like:
no worker, no TensorFlow), so a test can change the app before it serves.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter

from server.api import deps
from server.api.routes import jobs, operations, results
from server.app import create_app
from server.settings import Settings
from service_helpers import serving


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", frontend_dir=tmp_path / "no-page"))


def test_route_modules_expose_module_level_routers():
    paths = {module: {route.path for route in module.router.routes}
             for module in (jobs, results, operations)}
    assert all(isinstance(module.router, APIRouter) for module in paths)
    assert paths[jobs] == {"/initialize", "/jobs/{job_id}"}
    assert {"/jobs/{job_id}/model", "/jobs/{job_id}/traces", "/jobs/{job_id}/figure"} <= paths[results]
    assert {"/healthz", "/readyz", "/metrics"} <= paths[operations]


def test_dependencies_can_be_overridden(app, tmp_path):
    keyed = Settings(data_dir=tmp_path / "data", api_keys="only-key")
    app.dependency_overrides[deps.get_settings] = lambda: keyed
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        refused = client.get("/jobs/0123abcd")
        assert refused.status_code == 401, refused.text
        unknown = client.get("/jobs/0123abcd", headers={"X-API-Key": "only-key"})
        assert unknown.status_code == 404 and "0123abcd" in unknown.json()["detail"]
        app.dependency_overrides.clear()
        assert client.get("/jobs/0123abcd").status_code == 404
        assert client.get("/").headers["location"] == "/docs"  # no page in frontend_dir
