"""POST /initialize end to end against a real server and real TensorFlow workers."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pytest
from service_helpers import REPO, cnn_model, mlp_config, wait_finished

pytestmark = pytest.mark.slow

TRACE_LAYER_KEYS = {
    "index",
    "name",
    "class_name",
    "has_weights",
    "output_shape",
    "estimator",
    "scale",
    "target",
    "predicted",
    "autoinit",
}


def _assert_initialized_like_traces(model: keras.Model, traces: dict, original: keras.Model) -> None:
    """Each weighted layer's kernel variance is the scale AutoInit reported,
    and the Keras defaults the model was built with are not what came back."""
    weighted = [layer for layer in traces["layers"] if layer["has_weights"] and layer["scale"]]
    assert weighted, traces
    moved = []
    for record in weighted:
        kernel = model.get_layer(record["name"]).kernel.numpy()
        default = original.get_layer(record["name"]).kernel.numpy()
        assert kernel.var() == pytest.approx(record["scale"], rel=0.2), record["name"]
        assert not np.allclose(kernel, default), record["name"]
        moved.append(abs(default.var() - record["scale"]) > 0.2 * record["scale"])
    assert any(moved), "every layer kept its default variance"


def test_json_upload_with_wait_returns_finished_job_and_initialized_model(client, tmp_path):
    config = mlp_config()
    answer = client.post(
        "/initialize",
        params={"wait": 90, "seed": 3},
        files={"model": ("mlp.json", json.dumps(config), "application/json")},
    )
    assert answer.status_code == 200, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    assert job["options"]["seed"] == 3 and job["attempts"] == 1
    assert (
        job["model"]["name"] == "mlp"
        and job["model"]["num_params"] == 32 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    )
    assert set(job["links"]) >= {"self", "model", "config", "traces", "traces_csv", "figure"}

    model_file = tmp_path / "mlp.keras"
    model_file.write_bytes(client.get(job["links"]["model"]).content)
    model = keras.saving.load_model(model_file)
    traces = client.get(job["links"]["traces"]).json()
    original = keras.models.model_from_json(json.dumps(config))
    _assert_initialized_like_traces(model, traces, original)

    initialized = client.get(job["links"]["config"]).json()
    rebuilt = keras.saving.deserialize_keras_object(initialized, safe_mode=True)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]


def test_traces_follow_the_documented_schema_in_json_csv_and_figure(client):
    answer = client.post(
        "/initialize?wait=90&baselines=default,he_normal",
        files={"model": ("mlp.json", json.dumps(mlp_config("schema_mlp")))},
    )
    job = answer.json()
    assert job["status"] == "succeeded", job
    traces = client.get(f"/jobs/{job['id']}/traces").json()
    assert traces["model"]["name"] == "schema_mlp"
    assert traces["series"] == ["predicted", "default", "he_normal", "autoinit"]
    assert {"signal_variance", "input", "layers"} <= set(traces)
    for index, layer in enumerate(traces["layers"]):
        assert TRACE_LAYER_KEYS <= set(layer), layer
        assert layer["index"] == index
        assert set(layer["autoinit"]) >= {"mean", "var"}
    csv = client.get(f"/jobs/{job['id']}/traces.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert len(lines) >= len(traces["layers"]) and "hidden" in csv.text
    assert client.get(f"/jobs/{job['id']}/traces", params={"format": "csv"}).text == csv.text
    figure = client.get(f"/jobs/{job['id']}/figure").json()
    assert figure["data"] and "layout" in figure


def test_keras_archive_upload_is_initialized(client, tmp_path):
    original = cnn_model()
    path = tmp_path / "cnn.keras"
    original.save(path)
    options = {"seed": 7, "distribution": "uniform"}
    answer = client.post(
        "/initialize",
        params={"wait": 120},
        files={"model": ("cnn.keras", path.read_bytes(), "application/octet-stream")},
        data={"options": json.dumps(options)},
    )
    job = answer.json()
    assert job["status"] == "succeeded", job
    assert job["options"]["seed"] == 7 and job["options"]["distribution"] == "uniform"
    out = tmp_path / "out.keras"
    out.write_bytes(client.get(f"/jobs/{job['id']}/model").content)
    model = keras.saving.load_model(out)
    _assert_initialized_like_traces(model, client.get(f"/jobs/{job['id']}/traces").json(), original)
    kernel = model.get_layer("conv").kernel.numpy()
    # uniform draws are bounded by sqrt(3 * variance); normal ones are not
    assert np.abs(kernel).max() <= np.sqrt(3 * kernel.var()) * 1.05


def test_raw_json_body_without_wait_answers_202_then_polls_to_success(client):
    answer = client.post("/initialize", json=mlp_config("raw_mlp"))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["status"] in ("queued", "running")
    assert answer.headers["location"] == f"/jobs/{job['id']}"
    done = wait_finished(client, job["id"])
    assert done["status"] == "succeeded" and done["model"]["name"] == "raw_mlp"


def test_a_wait_beyond_the_servers_limit_is_capped_and_no_baselines_means_none(client):
    answer = client.post(
        "/initialize", json=mlp_config("capped_wait"), params={"wait": "1e9", "baselines": ""}
    )
    assert answer.status_code == 200, answer.text  # capped at AUTOINIT_MAX_WAIT, not refused
    traces = client.get(f"/jobs/{answer.json()['id']}/traces").json()
    assert traces["series"] == ["predicted", "autoinit"]
    assert all("default" not in layer for layer in traces["layers"])


def test_six_concurrent_uploads_all_succeed_with_distinct_jobs(client):
    def upload(index: int) -> dict:
        body = json.dumps(mlp_config(f"concurrent_{index}", width=16 + index))
        return client.post(
            "/initialize", files={"model": (f"m{index}.json", body)}, params={"seed": index}
        ).json()

    with ThreadPoolExecutor(6) as pool:
        jobs = list(pool.map(upload, range(6)))
    assert len({job["id"] for job in jobs}) == 6
    finished = [wait_finished(client, job["id"], timeout=240) for job in jobs]
    assert [job["status"] for job in finished] == ["succeeded"] * 6
    assert [job["model"]["name"] for job in finished] == [f"concurrent_{i}" for i in range(6)]
    assert [job["options"]["seed"] for job in finished] == list(range(6))


def test_artifacts_of_an_unfinished_job_answer_409_and_delete_removes_the_job(client):
    answer = client.post("/initialize", files={"model": ("m.json", json.dumps(mlp_config("gone")))})
    job_id = answer.json()["id"]
    early = client.get(f"/jobs/{job_id}/model")
    if early.status_code != 200:  # the worker may already be done on a fast machine
        assert early.status_code == 409
        assert early.headers["content-type"] == "application/problem+json"
    wait_finished(client, job_id)
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    missing = client.get(f"/jobs/{job_id}")
    assert missing.status_code == 404 and "No job has id" in missing.json()["detail"]
    assert client.delete(f"/jobs/{job_id}").status_code == 404


def test_python_client_downloads_an_initialized_model(service, tmp_path):
    from autoinit.client import JobFailedError, ServiceError, initialize

    original = cnn_model("client_cnn")
    result = initialize(
        service.url, original, out_dir=tmp_path, seed=1, baselines=["default", "lecun_normal"]
    )
    assert result.job["status"] == "succeeded"
    assert result.model_path.parent == Path(tmp_path) and result.model_path.suffix == ".keras"
    model = keras.saving.load_model(result.model_path)
    traces = json.loads(result.traces_path.read_text())
    assert "lecun_normal" in traces["series"]
    _assert_initialized_like_traces(model, traces, original)
    assert json.loads(result.config_path.read_text())["class_name"] == "Functional"

    with pytest.raises(ServiceError, match="Lambda"):
        bad = mlp_config()
        bad["config"]["layers"][1] = {
            "module": "keras.layers",
            "class_name": "Lambda",
            "config": {"name": "l", "function": "print"},
        }
        initialize(service.url, bad, out_dir=tmp_path)
    with pytest.raises(ServiceError) as refused:
        initialize(service.url, mlp_config(), out_dir=tmp_path, probe_batch=0)
    assert refused.value.status == 422 and "probe_batch" in str(refused.value)

    unbuildable = mlp_config("negative_units")
    unbuildable["config"]["layers"][1]["config"]["units"] = -4
    # Refused on upload (422) where the upload checks argument values, else by Keras in
    # the worker: either way the reason names the argument and the client raises.
    with pytest.raises((ServiceError, JobFailedError)) as failed:
        initialize(service.url, unbuildable, out_dir=tmp_path)
    if isinstance(failed.value, ServiceError):
        assert failed.value.status == 422
    else:
        assert failed.value.job["error"]["title"] == "The model could not be initialized"
    assert "units" in str(failed.value)


def _readme_curl() -> list[str]:
    """The README's one-line curl that returns an initialized model."""
    readme = (REPO / "README.md").read_text()
    lines = [line for line in readme.splitlines() if line.startswith("curl ") and "octet-stream" in line]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_one_line_curl_returns_an_initialized_model(service, tmp_path):
    (tmp_path / "model.json").write_text(json.dumps(mlp_config("from_curl")))
    command = [re.sub(r"http://127\.0\.0\.1:8000", service.url, arg) for arg in _readme_curl()]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    model = keras.saving.load_model(tmp_path / "initialized.keras")
    assert model.name == "from_curl"


def test_asking_for_the_model_of_a_failing_job_gives_the_reason_not_a_json_file(client):
    # A valid config that Keras cannot run: the probe's length 32 is no multiple of 5.
    inputs = keras.Input((None,))
    outputs = keras.layers.Dense(2)(keras.layers.Reshape((-1, 5))(inputs))
    config = json.loads(keras.Model(inputs, outputs, name="needs_five").to_json())
    answer = client.post("/initialize?wait=120", json=config, headers={"Accept": "application/octet-stream"})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["title"] == "The model could not be initialized"
    assert answer.headers["location"].startswith("/jobs/")
    assert "\x1b[" not in answer.json()["detail"]  # no terminal colour codes


def test_train_steps_add_training_curves_within_the_servers_bound(client):
    answer = client.post(
        "/initialize",
        params={"wait": 120, "train_steps": 2, "baselines": "default,he_normal"},
        json=mlp_config("trained"),
    )
    job = answer.json()
    assert job["status"] == "succeeded" and job["options"]["train_steps"] == 2, job
    training = client.get(job["links"]["traces"]).json()["training"]
    assert training["steps"] == 2
    assert {"default", "he_normal", "autoinit"} <= set(training["series"])
    assert all(len(series["loss"]) == 2 for series in training["series"].values())

    refused = client.post("/initialize", params={"train_steps": 101}, json=mlp_config())
    assert refused.status_code == 422, refused.text
    assert "AUTOINIT_MAX_TRAIN_STEPS" in refused.json()["detail"]
