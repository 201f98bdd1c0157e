"""The TensorFlow side: device setup per worker process, and the job itself.

Only worker processes import this module. Each Celery pool child calls
`prepare_tensorflow` once when it starts (only the ``AUTOINIT_GPU`` GPU kept
visible when that is set, GPU memory growth on, TF32 off, so probes measure
float32 statistics; the log names the device used), then runs jobs with
`run_job`:

1. count this attempt; past ``max_attempts`` the job fails (its earlier
   runs killed the worker: out of memory, or killed);
2. read the validated config the API stored (``upload.json``), and the
   training data (``data.npz``) when the job came with some;
3. ``autoinit.probe.compare`` builds it with ``safe_mode=True``, probes the
   baselines, runs AutoInit and probes the result, each probe in
   micro-batches within ``AUTOINIT_WORKER_MEMORY_BUDGET`` (the API refused
   jobs that cannot fit it at all);
4. write ``model.keras``, ``config.json`` and ``traces.json`` to the
   artifact store and return a small `server.protocol.JobOutcome` (never the files).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import re
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from server.artifacts import ArtifactStore
from server.protocol import (
    PROGRESS_STATE,
    JobFailed,
    JobOutcome,
    JobSucceeded,
    ProgressReport,
)
from server.settings import Settings

__all__ = ["choose_gpu", "prepare_tensorflow", "run_job"]

log = logging.getLogger("autoinit.worker")

_REPORT_EVERY = 0.5  # seconds between progress writes to the result backend
_MAX_WARNINGS = 50


def choose_gpu(visible: Sequence[str], wanted: int | None) -> int | None:
    """Index in ``visible`` of the GPU to pin, or None to keep every visible one.

    Raises:
        RuntimeError: ``wanted`` is set but names no visible GPU.
    """
    if wanted is None:
        return None
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    if not visible:
        raise RuntimeError(
            f"AUTOINIT_GPU={wanted} but this worker process sees no GPU "
            f"(CUDA_VISIBLE_DEVICES={cuda}). Unset AUTOINIT_GPU to run on the CPU."
        )
    if not 0 <= wanted < len(visible):
        raise RuntimeError(
            f"AUTOINIT_GPU should be an index from 0 to {len(visible) - 1}: this worker "
            f"process sees {list(visible)} (CUDA_VISIBLE_DEVICES={cuda}). Received: "
            f"{wanted}. In a container given one GPU, that GPU is 0."
        )
    return wanted


def prepare_tensorflow(**_signal_kwargs: Any) -> None:
    """Import TensorFlow and Keras once per worker process and set devices up.

    With ``AUTOINIT_GPU`` set, only that GPU stays visible to TensorFlow.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    pinned = choose_gpu([gpu.name for gpu in gpus], Settings().gpu)
    if pinned is not None:
        gpus = [gpus[pinned]]
        tf.config.set_visible_devices(gpus, "GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.experimental.enable_tensor_float_32_execution(False)
    import keras  # noqa: F401

    import autoinit.probe  # noqa: F401  (warm: the first job pays no import)

    log.info(
        "worker process %d ready; CUDA_VISIBLE_DEVICES=%s; OPENBLAS_NUM_THREADS=%s; uses %s",
        os.getpid(),
        os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
        os.environ.get("OPENBLAS_NUM_THREADS", "<unset>"),
        [_describe_gpu(tf, gpu) for gpu in gpus] or "the CPU (no GPU visible)",
    )


def _describe_gpu(tf: Any, gpu: Any) -> str:
    try:
        name = tf.config.experimental.get_device_details(gpu).get("device_name")
    except Exception:  # details are for the log only
        name = None
    return f"{gpu.name} ({name})" if name else gpu.name


class _Reporter:
    """Throttled ``update_state`` calls: the API reads them as progress."""

    def __init__(self, task: Any, job_id: str, attempt: int) -> None:
        self.task, self.job_id, self.attempt = task, job_id, attempt
        self._last = 0.0
        self._stage = ""

    def __call__(self, fraction: float, stage: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and stage == self._stage and now - self._last < _REPORT_EVERY:
            return
        self._last, self._stage = now, stage
        report = ProgressReport(max(0.0, min(1.0, float(fraction))), stage, self.attempt, os.getpid())
        self.task.update_state(task_id=self.job_id, state=PROGRESS_STATE, meta=report.to_dict())


def _previous_attempts(task: Any, job_id: str) -> int:
    meta = task.backend.get_task_meta(job_id)
    report = ProgressReport.from_dict(meta.get("result"))
    if meta.get("status") == PROGRESS_STATE and report is not None:
        return report.attempt
    return 0


def _json_safe(value: Any) -> Any:
    """Non-finite floats become null (JSON has no inf/NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


#: Library housekeeping (NumPy/TF deprecations) says nothing about the user's model.
_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)


def _warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    texts: list[str] = []
    for item in caught:
        if issubclass(item.category, _NOISE):
            continue
        text = f"{item.category.__name__}: {item.message}"
        if text not in texts and len(texts) < _MAX_WARNINGS:
            texts.append(text)
    return texts


def run_job(task: Any, settings: Settings, job_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run one job; returns its `JobOutcome` as a dict (Celery's JSON result)."""
    return _run(task, settings, job_id, options).to_dict()


def _run(task: Any, settings: Settings, job_id: str, options: dict[str, Any]) -> JobOutcome:
    attempt = _previous_attempts(task, job_id) + 1
    if attempt > settings.max_attempts:
        return JobFailed(
            "The worker stopped during this job",
            f"The worker process running this job stopped {attempt - 1} times before "
            "it finished (it was killed, most likely for running out of memory: the "
            "model may be too large for the worker, or AUTOINIT_WORKER_MEMORY_BUDGET above what "
            "it can use). The job is not retried again.",
            attempt - 1,
        )
    report = _Reporter(task, job_id, attempt)
    report(0.0, "starting", force=True)
    store = ArtifactStore(settings.artifact_location)
    upload = store.get_bytes(job_id, "upload.json")
    if upload is None:
        return JobFailed(
            "The upload is gone",
            "The job's uploaded config was not found in the artifact store; "
            "the job was probably deleted while queued.",
            attempt,
        )
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return _initialize(settings, store, job_id, json.loads(upload), options, report, attempt, caught)
    except Exception as error:  # every failure becomes a readable job error
        return JobFailed(*_describe(error, settings), attempt, _warning_texts(caught))
    finally:
        _release_memory()


def _initialize(settings, store, job_id, config, options, report, attempt, caught) -> JobOutcome:
    import keras

    from autoinit.keras_adapter.loading import load_model
    from autoinit.options import InitializeOptions
    from autoinit.probe import compare

    chosen = InitializeOptions.model_validate(options)  # what the API stored, checked again
    report(0.02, "building model", force=True)
    built = load_model(config)  # safe_mode=True; the upload passed the allow-list already
    _hold_while_exists(settings.hold_file)
    num_params = int(built.count_params())
    if num_params > settings.max_params:  # the upload's estimate can be below the real count
        return JobFailed(
            "The model is too large",
            f"The built model has {num_params:,} parameters; the limit is {settings.max_params:,}.",
            attempt,
            _warning_texts(caught),
        )
    probed = 0.6 if chosen.train_steps else 0.9  # progress share of the probe
    traces, model = compare(
        built,
        **chosen.compare_arguments(),
        return_model=True,
        progress=lambda fraction, stage: report(probed * fraction, stage),
        memory_budget_bytes=settings.worker_memory_budget,
    )
    del built
    if chosen.train_steps:
        data = store.get_bytes(job_id, "data.npz")
        traces["training"] = _train(config, chosen, data, lambda f, stage: report(0.6 + 0.3 * f, stage))
    report(0.92, "saving model", force=True)
    with tempfile.TemporaryDirectory(prefix="autoinit-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        store.put_file(job_id, "model.keras", path)
    initialized = keras.saving.serialize_keras_object(model)
    store.put_bytes(job_id, "config.json", json.dumps(_json_safe(initialized)).encode())
    store.put_bytes(job_id, "traces.json", json.dumps(_json_safe(traces), allow_nan=False).encode())
    report(1.0, "done", force=True)
    return JobSucceeded(
        attempt,
        _warning_texts(caught),
        {"name": model.name, "num_params": num_params, "num_layers": len(traces.get("layers", []))},
    )


def _train(config: dict[str, Any], chosen: Any, data: bytes | None, progress: Any) -> dict[str, Any]:
    """``train_steps`` SGD steps per initialization (`autoinit.training.train_probe`):
    on the job's training data (an ``.npz`` the API read already) when it has
    some, else on the synthetic teacher task. Data that does not fit the model
    raises `autoinit.errors.TrainingDataError`: the job fails saying why."""
    from autoinit.training import load_training_data, train_probe

    arrays = load_training_data(data) if data is not None else None  # never unpickled
    return train_probe(
        config,
        task="teacher" if arrays is None else "data",
        data=arrays,
        **chosen.train_arguments(),
        progress=progress,
    )


def _hold_while_exists(path: Path | None) -> None:
    """Test hook (``AUTOINIT_HOLD_FILE``): wait while ``path`` exists.

    The wait is interruptible: the soft time limit and a revoke still stop it.
    """
    while path is not None and path.exists():
        time.sleep(0.05)


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _describe(error: Exception, settings: Settings) -> tuple[str, str]:
    """(title, detail) of a failed job: plain text (Keras colours its messages)."""
    title, detail = _describe_raw(error, settings)
    return title, _ANSI_ESCAPE.sub("", detail)


def _describe_raw(error: Exception, settings: Settings) -> tuple[str, str]:
    from celery.exceptions import SoftTimeLimitExceeded

    from autoinit.errors import AutoInitError, TrainingDataError

    if isinstance(error, TrainingDataError):
        return "The training data does not fit the model", f"{type(error).__name__}: {error}"
    if isinstance(error, SoftTimeLimitExceeded):
        return (
            "The job took too long",
            f"The job ran longer than the limit of {settings.job_time_limit:g} s "
            "and was stopped. Try a smaller probe_batch or fewer baselines.",
        )
    if isinstance(error, (AutoInitError, ValueError, TypeError, KeyError)):
        return "The model could not be initialized", f"{type(error).__name__}: {error}"
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return (
            "The worker ran out of memory",
            f"{type(error).__name__}: {str(error)[:500]}. Try a smaller probe_batch.",
        )
    log.error("job failed unexpectedly:\n%s", traceback.format_exc())
    return ("Internal error while initializing", f"{type(error).__name__}: {str(error)[:1000]}")


def _release_memory() -> None:
    try:
        import keras

        keras.backend.clear_session()
    except Exception:  # freeing memory must never fail a job
        pass
    gc.collect()
