"""The worker's memory budget (``AUTOINIT_WORKER_MEMORY_BUDGET``).

A job whose probe cannot fit the budget even one example at a time is refused
at upload with a 422 that says by how much and what to change; the API knows
this from the config's shapes alone (no TensorFlow in the API process), so
its estimate must agree with the probe's own (`autoinit.probe.memory`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from service_helpers import holding_jobs, mlp_config, serving, wait_finished

from autoinit.upload.params import activation_elements
from server.app import create_app
from server.intake import probe_memory_floor
from server.settings import Settings, machine_memory_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "frontend" / "examples"


def _example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "name", ["mlp", "all_cnn_c", "preact_resnet56_nobn", "text_cnn", "transformer_encoder", "codeepneat"]
)
@pytest.mark.parametrize("backward", [False, True])
def test_the_apis_estimate_is_the_probes_estimate(name, backward):
    """The config-only floor equals estimate_probe_memory(model, batch, 1) of
    the built model (within 5%: the config's shapes are upper bounds, e.g. a
    ``valid`` convolution counted as ``same``), never below it by more than 1%."""
    import keras  # noqa: F401  (the test process may; the API process may not)

    from autoinit.keras_adapter.loading import load_model
    from autoinit.probe.memory import activation_sizes, estimate_probe_memory

    config = _example(name)
    model = load_model(config)
    real = activation_sizes(model)
    ours = activation_elements(config)
    assert ours.known
    assert (4 * ours.inputs, 4 * ours.outputs, ours.calls) == (real.inputs, real.outputs, real.calls)
    # Upper bounds (valid convolutions counted as same; a nested model's
    # outputs counted inside it and again where it is called).
    assert real.live_peak <= 4 * ours.live_peak <= 1.1 * real.live_peak
    assert real.total <= 4 * ours.total <= 1.15 * real.total
    expected = estimate_probe_memory(model, 256, 1, backward=backward, compiled=True)
    floor = probe_memory_floor(ours, 256, backward=backward)
    assert 0.99 * expected <= floor <= 1.05 * expected, (floor, expected)


def test_default_budget_is_a_quarter_of_the_machine(monkeypatch):
    monkeypatch.delenv("AUTOINIT_WORKER_MEMORY_BUDGET", raising=False)
    assert Settings().worker_memory_budget == machine_memory_bytes() // 4
    monkeypatch.setenv("AUTOINIT_WORKER_MEMORY_BUDGET", "123456789")
    assert Settings().worker_memory_budget == 123456789


@pytest.fixture()
def small_budget(tmp_path):
    """An API (no worker) whose workers may use about 71 MiB: ResNet-56 without
    BN needs 72 MiB at probe_batch 256, one example at a time."""
    sizes = activation_elements(_example("preact_resnet56_nobn"))
    budget = probe_memory_floor(sizes, 200, backward=False)
    settings = Settings(
        data_dir=tmp_path / "data", frontend_dir=tmp_path / "no-page", worker_memory_budget=budget
    )
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _post(client: httpx.Client, config: dict, **options) -> httpx.Response:
    return client.post(
        "/initialize",
        files={"model": ("model.json", json.dumps(config))},
        data={"options": json.dumps(options)},
    )


def test_a_probe_over_the_budget_is_refused_with_422_before_any_job(small_budget):
    refused = _post(small_budget, _example("preact_resnet56_nobn"))
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["title"] == "The probe needs more memory than this server allows"
    detail = problem["detail"]
    assert "probe_batch=256" in detail and "AUTOINIT_WORKER_MEMORY_BUDGET" in detail
    assert "even one example at a time" in detail
    assert "a probe_batch of at most 200 (received 256)" in detail, detail
    assert 'autoinit_uploads_refused_total{status="422"} 1.0' in small_budget.get("/metrics").text


def test_what_the_refusal_suggests_is_accepted(small_budget):
    accepted = _post(small_budget, _example("preact_resnet56_nobn"), probe_batch=200)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["options"]["probe_batch"] == 200
    small = _post(small_budget, mlp_config())
    assert small.status_code == 202, small.text


def test_backward_is_named_when_only_the_gradient_probe_does_not_fit(small_budget):
    refused = _post(small_budget, _example("preact_resnet56_nobn"), probe_batch=64, backward=True)
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "backward=true" in detail and "backward=false" in detail, detail


def test_a_model_whose_traced_graph_alone_is_over_the_budget_is_told_to_have_fewer_layers():
    from autoinit.options import InitializeOptions
    from server.intake import check_probe_memory
    from server.problems import ProblemError

    with pytest.raises(ProblemError) as refused:
        check_probe_memory(_example("preact_resnet56_nobn"), InitializeOptions(probe_batch=1), 30 << 20)
    assert refused.value.status == 422
    detail = refused.value.detail
    assert "fewer layers (the traced graph of 141 layer calls alone needs about 68 MiB)" in detail, detail
    assert "probe_batch of at most" not in detail, detail


# --- Progress moves with the probe ---------------------------------------------


def test_a_jobs_progress_never_goes_back_and_passes_through_several_values(client, service):
    """Watched through GET /jobs/{id}: held after its build (so the poller sees
    the running state whatever the machine's speed), then let go."""
    with holding_jobs(service.hold_file):
        job = _post(client, mlp_config("progress_mlp"), baselines=["default", "he_normal"]).json()
        seen = [(job["progress"], job["stage"])]
        deadline = time.monotonic() + 120
        while seen[-1][1] != "building model" and time.monotonic() < deadline:
            job = client.get(f"/jobs/{job['id']}").json()
            assert job["status"] in ("queued", "running"), job
            seen.append((job["progress"], job["stage"]))
    finished = wait_finished(client, job["id"])
    seen.append((finished["progress"], finished["stage"]))
    values = [progress for progress, _ in seen]
    assert finished["status"] == "succeeded", finished
    assert values == sorted(values), seen
    assert ("building model" in {stage for _, stage in seen}) and 0 < min(v for v in values if v) < 0.1
    assert len(set(values)) >= 3 and values[-1] == 1.0, seen


class _CeleryTask:
    """What the worker uses of a Celery task: its result backend and
    ``update_state`` (recorded here instead of sent)."""

    def __init__(self) -> None:
        self.reports: list[dict] = []
        self.backend = self

    def get_task_meta(self, job_id: str) -> dict:
        return {}

    def update_state(self, task_id: str, state: str, meta: dict) -> None:
        self.reports.append(meta)


def test_the_worker_reports_every_probe_in_order_when_the_budget_splits_the_batch(tmp_path):
    """The worker's own reports (each stage change is sent, whatever the
    time): non-decreasing, through every probe, to 1.0, with a budget that
    runs the probe batch four examples at a time."""
    from server.artifacts import ArtifactStore
    from server.worker import run_job

    config = _example("preact_resnet56_nobn")
    sizes = activation_elements(config)
    per_example = probe_memory_floor(sizes, 16, backward=False) - probe_memory_floor(
        sizes, 16, backward=False, micro_batch=0
    )
    budget = probe_memory_floor(sizes, 16, backward=False) + 3 * per_example  # 4 examples a pass
    settings = Settings(data_dir=tmp_path / "data", worker_memory_budget=budget)
    ArtifactStore(settings.artifact_location).put_bytes("job1", "upload.json", json.dumps(config).encode())
    task = _CeleryTask()
    outcome = run_job(task, settings, "job1", {"baselines": ["default", "he_normal"], "probe_batch": 16})
    assert outcome["outcome"] == "succeeded", outcome
    values = [report["progress"] for report in task.reports]
    stages = [report["stage"] for report in task.reports]
    assert values == sorted(values) and values[-1] == 1.0, task.reports
    expected = ["probing default initialization", "probing he_normal", "running AutoInit", "probing AutoInit"]
    assert [s for s in dict.fromkeys(stages) if s in expected] == expected, stages
    # The first probe traces the graph and the page is told so, before it measures.
    tracing = "probing default initialization (tracing the graph)"
    assert tracing in stages and stages.index(tracing) < stages.index("probing he_normal"), stages
    assert len(set(values)) >= 7, task.reports
