"""Training over HTTP against a real server: the training table (CSV) and real data uploads."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from service_helpers import ServiceProcess, mlp_config

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"


def test_training_csv_has_a_row_per_step_per_initialization_and_where_it_diverged(client):
    answer = client.post(
        "/initialize",
        params={"wait": 120, "train_steps": 3, "baselines": "default,he_normal"},
        json=mlp_config("trained_csv"),
    )
    job = answer.json()
    assert job["status"] == "succeeded", job
    assert job["links"]["training_csv"] == f"/jobs/{job['id']}/traces.csv?table=training"
    training = client.get(job["links"]["traces"]).json()["training"]

    table = client.get(f"/jobs/{job['id']}/traces", params={"format": "csv", "table": "training"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    assert f'filename="{job["id"]}-training.csv"' in table.headers["content-disposition"]
    assert client.get(job["links"]["training_csv"]).text == table.text
    rows = list(csv.reader(io.StringIO(table.text)))
    names = list(training["series"])
    assert names == ["default", "he_normal", "autoinit"]
    assert rows[0] == ["step"] + [f"{n}_{k}" for n in names for k in ("loss", "grad_norm")]
    assert [row[0] for row in rows[1:-1]] == ["0", "1", "2"]
    for column, (name, key) in enumerate(((n, k) for n in names for k in ("loss", "grad_norm")), start=1):
        cells = [row[column] for row in rows[1:-1]]
        values = training["series"][name][key]
        assert [float(c) if c else None for c in cells] == values
    diverged = [training["series"][n]["diverged_at"] for n in names for _ in range(2)]
    assert rows[-1] == ["diverged_at"] + ["" if d is None else str(d) for d in diverged]
    # The layer table is still the default.
    assert client.get(f"/jobs/{job['id']}/traces.csv").text.startswith("index,name,class_name")


def test_a_job_that_did_not_train_has_no_training_csv(client):
    job = client.post("/initialize", params={"wait": 120}, json=mlp_config("untrained")).json()
    assert job["status"] == "succeeded", job
    assert job["links"]["training_csv"] is None
    for answer in (
        client.get(f"/jobs/{job['id']}/traces.csv", params={"table": "training"}),
        client.get(f"/jobs/{job['id']}/traces", params={"format": "csv", "table": "training"}),
    ):
        assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
        problem = answer.json()
        assert problem["title"] == "Job has no training"
        assert "train_steps=0" in problem["detail"] and "train_steps > 0" in problem["detail"]
    wrong = client.get(f"/jobs/{job['id']}/traces", params={"table": "training"})
    assert wrong.status_code == 422 and "format=csv" in wrong.json()["detail"]
    unknown = client.get(f"/jobs/{job['id']}/traces.csv", params={"table": "weights"})
    assert unknown.status_code == 422 and unknown.headers["content-type"] == PROBLEM
    json.loads(client.get(f"/jobs/{job['id']}/traces").text)  # JSON still served


# --- real training data: the multipart field 'data', an .npz of x and y -------


def _npz(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _mlp_data(examples: int = 128, features: int = 32) -> bytes:
    """x of the mlp's input shape (32,), y of its linear output's (10,)."""
    rng = np.random.default_rng(0)
    return _npz(
        x=rng.standard_normal((examples, features)).astype("float32"),
        y=rng.standard_normal((examples, 10)).astype("float32"),
    )


def _form(data: bytes, options: dict | None = None, name: str = "data_mlp") -> dict:
    files = {
        "model": ("mlp.json", json.dumps(mlp_config(name)), "application/json"),
        "data": ("train.npz", data, "application/octet-stream"),
    }
    if options is not None:
        files["options"] = (None, json.dumps(options))
    return files


def _jobs_in_store(client) -> int:
    text = client.get("/metrics").text
    return int(sum(float(v) for v in re.findall(r'^autoinit_jobs\{status="\w+"\} (\S+)$', text, re.M)))


def _refused(answer, status: int, *phrases: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status and problem["title"]
    for phrase in phrases:
        assert phrase.lower() in problem["detail"].lower(), problem
    return problem


def test_a_job_with_training_data_trains_on_it_not_on_the_synthetic_task(client):
    answer = client.post(
        "/initialize",
        params={"wait": 180},
        files=_form(_mlp_data(), {"train_steps": 3, "baselines": ["default"]}),
    )
    job = answer.json()
    assert answer.status_code == 200 and job["status"] == "succeeded", job
    training = client.get(job["links"]["traces"]).json()["training"]
    assert training["task"] == "data" and training["synthetic"] is False
    assert training["steps"] == 3 and list(training["series"]) == ["default", "autoinit"]
    assert all(len(curves["loss"]) == 3 for curves in training["series"].values())
    # The API read the archive (autoinit.training.load_training_data) without loading Keras.
    assert client.get("/healthz").json()["tensorflow_imported"] is False
    # The same model without data trains on the synthetic task: the data made the difference.
    plain = client.post("/initialize", params={"wait": 180, "train_steps": 3}, json=mlp_config()).json()
    assert client.get(plain["links"]["traces"]).json()["training"]["task"] == "teacher"


def test_training_data_that_does_not_fit_the_model_fails_the_job_with_the_reason(client):
    answer = client.post(
        "/initialize", params={"wait": 180, "train_steps": 2}, files=_form(_mlp_data(features=31))
    )
    job = answer.json()
    assert job["status"] == "failed", job
    assert job["error"]["title"] == "The training data does not fit the model"
    assert "TrainingDataError" in job["error"]["detail"] and "(N, 32)" in job["error"]["detail"]


@pytest.fixture(scope="module")
def small_cap(tmp_path_factory) -> Iterator[httpx.Client]:
    """An API without workers whose training data may hold 20,000 bytes: every
    refusal here happens at intake, before a job exists."""
    server = ServiceProcess(
        tmp_path_factory.mktemp("small_cap") / "data",
        "--workers",
        "0",
        env={"AUTOINIT_MAX_DATA_BYTES": "20000"},
    )
    try:
        server.wait_healthy()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield http
    finally:
        server.stop()


def test_bad_training_data_is_refused_with_its_reason_before_a_job_exists(small_cap):
    before = _jobs_in_store(small_cap)
    steps = {"train_steps": 2}
    x = np.zeros((4, 32), "float32")
    pickled = _npz(x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros((4, 10)))
    _refused(small_cap.post("/initialize", files=_form(pickled, steps)), 422, "unpickling")
    _refused(small_cap.post("/initialize", files=_form(_npz(x=x), steps)), 422, "missing", "'y'")
    _refused(
        small_cap.post("/initialize", files=_form(_npz(x=x, y=np.zeros((3, 10))), steps)),
        422,
        "same number of examples",
        "4 and 3",
    )
    strings = _npz(x=x, y=np.array(["a", "b", "c", "d"]))
    _refused(small_cap.post("/initialize", files=_form(strings, steps)), 422, "numeric")
    _refused(small_cap.post("/initialize", files=_form(b"not a zip", steps)), 422, ".npz")
    # Data without training is refused whatever it holds.
    valid = _npz(x=x, y=np.zeros((4, 10), "float32"))
    problem = _refused(small_cap.post("/initialize", files=_form(valid)), 422, "train_steps > 0")
    assert problem["title"] == "Training data without training" and "train_steps=0" in problem["detail"]
    assert _jobs_in_store(small_cap) == before


def test_training_data_over_the_servers_cap_gets_413(small_cap):
    before = _jobs_in_store(small_cap)
    steps = {"train_steps": 2}
    big = _npz(x=np.ones((200, 32), "float32"), y=np.ones((200, 10), "float32"))
    assert len(big) > 20_000
    _refused(small_cap.post("/initialize", files=_form(big, steps)), 413, "20,000", "AUTOINIT_MAX_DATA_BYTES")
    # Small as sent, large once uncompressed: refused without being expanded.
    bomb = _npz(compressed=True, x=np.zeros((10_000, 32), "float32"), y=np.zeros((10_000, 10), "float32"))
    assert len(bomb) < 20_000
    _refused(small_cap.post("/initialize", files=_form(bomb, steps)), 413, "uncompressed", "20,000")
    assert _jobs_in_store(small_cap) == before
    # Under the cap, the same form is accepted (a job is queued; no worker runs it here).
    fits = _npz(x=np.ones((20, 32), "float32"), y=np.ones((20, 10), "float32"))
    accepted = small_cap.post("/initialize", files=_form(fits, steps))
    assert accepted.status_code == 202, accepted.text
    assert _jobs_in_store(small_cap) == before + 1
