"""The app's rooms: importable routers, overridable dependencies, one options model.

These serve `server.app.create_app` in this process (``--workers 0``-like:
no worker, no TensorFlow), so a test can change the app before it serves.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from service_helpers import serving

from server.api import deps
from server.api.routes import jobs, operations, results
from server.app import create_app
from server.settings import Settings


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", frontend_dir=tmp_path / "no-page"))


def test_route_modules_expose_module_level_routers():
    paths = {module: {route.path for route in module.router.routes} for module in (jobs, results, operations)}
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


def test_initialize_query_parameters_are_the_options_fields(app):
    from autoinit.options import InitializeOptions

    operation = app.openapi()["paths"]["/initialize"]["post"]
    names = [parameter["name"] for parameter in operation["parameters"]]
    assert names == ["wait", "filename", *InitializeOptions.model_fields]


def test_get_options_serves_the_defaults_and_schema_of_the_one_options_model(app):
    from autoinit.options import InitializeOptions
    from server import schemas

    assert schemas.InitializeOptions is InitializeOptions  # re-exported, not copied
    with serving(app) as url:
        answer = httpx.get(url + "/options", timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"defaults", "schema"}
    assert body["defaults"] == InitializeOptions().model_dump(mode="json")
    assert body["defaults"]["seed"] == 0 and body["defaults"]["probe_batch"] == 256
    assert set(body["schema"]["properties"]) == set(InitializeOptions.model_fields)
    assert body["schema"]["properties"]["seed"]["maximum"] == 2**32 - 1
    # This server's own bound, tighter than the model's, is what the page is told.
    assert body["schema"]["properties"]["train_steps"]["maximum"] == Settings().max_train_steps


def test_options_bounds_and_the_autoinit_argument_names():
    import inspect

    from pydantic import ValidationError

    from autoinit.autoinit import AutoInit
    from autoinit.options import AUTOINIT_ARGUMENT_NAMES, InitializeOptions

    assert InitializeOptions(seed=2**32 - 1, probe_batch=4096).seed == 2**32 - 1
    for bad in (
        {"seed": 2**32},
        {"seed": -1},
        {"input_mean": float("inf")},
        {"input_var": float("nan")},
        {"probe_batch": 4097},
        {"colour": 1},
        {"baselines": "default,xavier"},
    ):
        with pytest.raises(ValidationError):
            InitializeOptions(**bad)
    assert InitializeOptions(baselines="he_normal, default,he_normal").baselines == ["he_normal", "default"]
    assert set(AUTOINIT_ARGUMENT_NAMES) <= set(InitializeOptions.model_fields)
    parameters = inspect.signature(AutoInit).parameters
    for option, argument in AUTOINIT_ARGUMENT_NAMES.items():
        assert argument.split("[")[0] in parameters, (option, argument)
    arguments = InitializeOptions(probe_batch=32).compare_arguments()
    assert arguments["batch_size"] == 32 and "probe_batch" not in arguments
