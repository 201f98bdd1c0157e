"""Training over HTTP against a real server: the training table (CSV) and real data uploads."""

from __future__ import annotations

import csv
import io
import json

import pytest
from service_helpers import mlp_config

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
