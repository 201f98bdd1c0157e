"""Helpers for the server tests: real service processes and real Keras models."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
_SERVE = "import sys; from server.serve import serve_main; sys.exit(serve_main(sys.argv[1:]))"
_WORK = "import sys; from server.serve import worker_main; sys.exit(worker_main(sys.argv[1:]))"

#: Limits of the shared server, small so refusals are cheap to provoke.
MAX_UPLOAD_BYTES = 2_000_000
MAX_LAYERS = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOINIT_")}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES=env.get("CUDA_VISIBLE_DEVICES", "-1"),
        PYTHONPATH=str(REPO),
    )
    env.update(extra or {})
    return env


class ServiceProcess:
    """``autoinit serve`` in a subprocess; `stop` shuts it down gracefully."""

    def __init__(
        self, data_dir: Path, *args: str, env: dict[str, str] | None = None, log_name: str = "serve.log"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-{log_name}"
        #: While this file exists, the embedded workers hold each job after its build.
        self.hold_file = data_dir.parent / f"{data_dir.name}-hold"
        command = [
            sys.executable,
            "-c",
            _SERVE,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
            *args,
        ]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env=_env({"AUTOINIT_HOLD_FILE": str(self.hold_file), **(env or {})}),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        _wait_for(self.url + "/healthz", timeout, self)

    def wait_ready(self, timeout: float = 180) -> dict:
        """Until a worker answers /readyz (its TensorFlow import takes a while); its body."""
        self.wait_healthy()
        return _wait_for(self.url + "/readyz", timeout, self).json()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        _terminate(self.proc, grace=40)
        self._log.close()


@contextmanager
def holding_jobs(hold_file: Path) -> Iterator[None]:
    """Jobs started inside this block wait in the running state (after their
    build) until it ends: a slow job whatever the machine's speed."""
    hold_file.touch()
    try:
        yield
    finally:
        hold_file.unlink(missing_ok=True)


def start_worker(*args: str, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``autoinit worker`` in a subprocess."""
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-c", _WORK, "--log-level", "warning", *args],
        cwd=REPO,
        env=_env(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen) -> None:
    _terminate(proc, grace=30)


def _terminate(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Whatever the process group still holds (worker children) goes too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(10)


def _wait_for(url: str, timeout: float, service: ServiceProcess | None = None) -> httpx.Response:
    """The first 200 answer of ``url``, polled until ``timeout`` (assert on it: a
    second request, e.g. to /readyz, may find a busy worker slow to answer)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if service is not None and service.proc.poll() is not None:
            raise RuntimeError(f"The server exited with {service.proc.returncode}:\n{service.log_tail()}")
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                return answer
            last = answer.status_code
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.3)
    tail = service.log_tail() if service else ""
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s (last: {last}).\n{tail}")


def wait_finished(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    """Poll a job until it succeeded or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise TimeoutError(f"Job {job_id} did not finish within {timeout} s: {job}")


# --- Models built with real Keras ---------------------------------------------


def mlp_config(name: str = "mlp", width: int = 64) -> dict:
    import keras

    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(width, activation="relu", name="hidden"),
            keras.layers.Dense(width, activation="tanh", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ],
        name=name,
    )
    return json.loads(model.to_json())


def cnn_model(name: str = "small_cnn"):
    import keras

    layers = keras.layers
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(inputs)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


@contextmanager
def serving(app, **uvicorn_options) -> Iterator[str]:
    """Serve an ASGI app in this process (a uvicorn thread) on a free loopback
    port; yields its base URL. For tests that change the app itself, e.g.
    through ``app.dependency_overrides``."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options)
    )
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
