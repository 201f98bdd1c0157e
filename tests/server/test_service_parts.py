"""The service's parts on their own: settings, job store, artifact store, devices."""

from __future__ import annotations

import pytest

from server.artifacts import ArtifactStore
from server.jobs import JobStore
from server.serve import detect_gpus
from server.settings import Settings


def test_settings_read_autoinit_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOINIT_MAX_LAYERS", "7")
    monkeypatch.setenv("AUTOINIT_API_KEYS", " a, b ,,")
    monkeypatch.setenv("AUTOINIT_CORS_ORIGINS", "https://x.example")
    monkeypatch.setenv("AUTOINIT_BROKER_URL", "redis://h:1/0")
    settings = Settings(data_dir=tmp_path)
    assert settings.max_layers == 7 and settings.upload_limits().max_layers == 7
    assert settings.api_key_set == {"a", "b"}
    assert settings.cors_origin_list == ["https://x.example"]
    assert not settings.embedded
    assert settings.artifact_location == str(tmp_path.resolve() / "artifacts")


def test_job_records_survive_reopening_the_store(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3", ttl=60)
    job = store.create(options={"seed": 1}, model={"name": "m"}, filename="m.json")
    store.update(job.id, status="running", progress=0.5, stage="probing", attempts=1)
    store.close()
    again = JobStore(tmp_path / "jobs.sqlite3", ttl=60).get(job.id)
    assert (again.status, again.progress, again.stage, again.attempts) == ("running", 0.5, "probing", 1)
    assert again.options == {"seed": 1} and again.model == {"name": "m"}
    assert again.expires_at == pytest.approx(job.created_at + 60)


def test_job_store_counts_and_expires(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3", ttl=10)
    first = store.create(options={})
    second = store.create(options={})
    store.update(second.id, status="succeeded")
    assert store.count_by_status() == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0}
    assert store.active_ids() == [first.id]
    assert store.expired_ids(now=first.created_at + 5) == []
    assert set(store.expired_ids(now=first.created_at + 11)) == {first.id, second.id}
    with pytest.raises(ValueError, match="Unknown job fields"):
        store.update(first.id, id="other")
    assert store.delete(first.id) and not store.delete(first.id)


def test_artifact_store_refuses_names_outside_a_job_folder(tmp_path):
    store = ArtifactStore(str(tmp_path))
    store.put_bytes("abc123", "traces.json", b"{}")
    assert store.get_bytes("abc123", "traces.json") == b"{}"
    assert store.get_bytes("abc123", "model.keras") is None
    for job_id, name in (("../etc", "traces.json"), ("abc123", "../../passwd"), ("abc123", "x")):
        with pytest.raises(ValueError, match="Expected a job id"):
            store.put_bytes(job_id, name, b"")
    store.delete("abc123")
    assert not (tmp_path / "abc123").exists()


def test_artifact_store_works_through_fsspec_urls(tmp_path):
    pytest.importorskip("fsspec")
    store = ArtifactStore(f"local://{tmp_path}/objects")  # fsspec, like s3://bucket/prefix
    assert store.local_path("abc123", "traces.json") is None  # served from bytes, not a path
    store.put_bytes("abc123", "traces.json", b'{"layers": []}')
    store.put_file("abc123", "model.keras", _write(tmp_path / "m.keras", b"PK\x03\x04"))
    assert (tmp_path / "objects" / "abc123" / "traces.json").read_bytes() == b'{"layers": []}'
    assert store.get_bytes("abc123", "model.keras") == b"PK\x03\x04"
    assert store.get_bytes("abc123", "config.json") is None
    store.delete("abc123")
    assert not (tmp_path / "objects" / "abc123").exists()
    store.delete("abc123")  # deleting twice is fine


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_gpus_come_from_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_gpus() == []


def test_worker_setup_turns_tf32_off():
    import tensorflow as tf

    from server.worker import prepare_tensorflow

    before = tf.config.experimental.tensor_float_32_execution_enabled()
    try:
        prepare_tensorflow()
        assert tf.config.experimental.tensor_float_32_execution_enabled() is False
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(before)


def test_job_outcomes_round_trip_through_celerys_json():
    import json

    from server.protocol import JobFailed, JobState, JobSucceeded, ProgressReport, outcome_from_dict

    succeeded = JobSucceeded(2, ["UserWarning: x"], {"name": "m", "num_params": 10})
    failed = JobFailed("The job took too long", "limit of 4 s", 1)
    for outcome in (succeeded, failed):
        assert outcome_from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome
    assert outcome_from_dict({"outcome": "maybe"}) is None and outcome_from_dict([1]) is None
    assert outcome_from_dict({"outcome": JobState.FAILED.value}).title == "The job failed"
    report = ProgressReport(0.5, "probing", 1, 123)
    assert ProgressReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert ProgressReport.from_dict({"progress": "x"}) is None
    assert [state.finished for state in JobState] == [False, False, True, True]


def test_protocol_is_a_leaf_and_the_worker_does_not_import_the_celery_app():
    import subprocess
    import sys

    from service_helpers import REPO

    probe = (
        "import sys, server.protocol; assert not [m for m in sys.modules if m.startswith("
        "'server.') and m != 'server.protocol'], sorted(sys.modules); "
        "import server.worker, server.tracking; print('server.tasks' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_finished_jobs_record_no_longer_changes(tmp_path):
    """Of two callers that both saw a job finish (or a late progress report),
    only the first write lands: a finished record is final."""
    store = JobStore(tmp_path / "jobs.sqlite3", ttl=60)
    job = store.create(options={})
    assert store.update(job.id, status="running", progress=0.4)
    assert store.update(job.id, status="succeeded", progress=1.0, finished_at=10.0)
    assert not store.update(job.id, status="succeeded", finished_at=11.0)
    assert not store.update(job.id, status="running", progress=0.5)
    again = store.get(job.id)
    assert (again.status, again.progress, again.finished_at) == ("succeeded", 1.0, 10.0)


class _OutageStore(ArtifactStore):
    """A file store whose deletes fail for some jobs, as a remote store's may."""

    def __init__(self, location: str, failing: set[str]) -> None:
        super().__init__(location)
        self.failing = failing

    def delete(self, job_id: str) -> None:
        if job_id in self.failing:
            raise OSError(f"the store is unreachable (deleting {job_id})")
        super().delete(job_id)


def test_a_store_that_cannot_delete_one_jobs_files_keeps_no_sweep_from_the_others(tmp_path):
    from server.metrics import ServiceMetrics
    from server.tasks import make_celery
    from server.tracking import JobTracker

    settings = Settings(data_dir=tmp_path / "data")
    store = JobStore(tmp_path / "jobs.sqlite3", ttl=0)  # every record past its time to live
    jobs = [store.create(options={}) for _ in range(3)]
    for job in jobs:
        store.update(job.id, status="succeeded")
    artifacts = _OutageStore(str(tmp_path / "artifacts"), failing={jobs[0].id})
    for job in jobs:
        artifacts.put_bytes(job.id, "upload.json", b"{}")
    tracker = JobTracker(settings, store, artifacts, make_celery(settings), ServiceMetrics())
    assert tracker.purge_expired() == 3
    assert store.all_ids() == set()  # the first job's failure stopped neither its record nor the others
    assert artifacts.get_bytes(jobs[0].id, "upload.json") == b"{}"  # its files wait for the store
    assert all(artifacts.get_bytes(job.id, "upload.json") is None for job in jobs[1:])
