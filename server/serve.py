"""``autoinit serve`` and ``autoinit worker``: start the API and its workers.

``serve_main`` runs the API under uvicorn in this process and starts worker
processes beside it (spawned, so none inherits anything from the API; one per
GPU, each seeing only its GPU via ``CUDA_VISIBLE_DEVICES``; CPU workers where
there is no GPU). Without ``--broker`` the queue lives in the data directory
and nothing else is needed. With ``--broker redis://...`` and ``--workers 0``
the API only queues, and ``worker_main`` runs workers on the GPU hosts.

Also runnable as ``python -m server.serve serve|worker [options]``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

__all__ = ["serve_main", "worker_main", "detect_gpus", "run_celery_worker"]

log = logging.getLogger("autoinit.serve")


def detect_gpus() -> list[str]:
    """Visible NVIDIA GPU ids, without importing TensorFlow."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        return [] if ids in ([], ["-1"]) else ids
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="Job database, embedded queue and artifacts (AUTOINIT_DATA_DIR; default ./autoinit-data).",
    )
    parser.add_argument(
        "--broker",
        help="Celery broker URL, e.g. redis://host:6379/0 "
        "(AUTOINIT_BROKER_URL). Omit for the embedded queue in --data-dir.",
    )
    parser.add_argument(
        "--artifact-url",
        help="Shared artifact directory or fsspec URL (AUTOINIT_ARTIFACT_URL; default <data-dir>/artifacts).",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _settings_from(args: argparse.Namespace):
    from server.settings import Settings

    overrides = {
        key: value
        for key, value in (
            ("data_dir", args.data_dir),
            ("broker_url", args.broker),
            ("artifact_url", args.artifact_url),
        )
        if value
    }
    settings = Settings(**overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Workers spawned later read the same values from the environment.
    os.environ["AUTOINIT_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.broker_url:
        os.environ["AUTOINIT_BROKER_URL"] = settings.broker_url
    if settings.artifact_url:
        os.environ["AUTOINIT_ARTIFACT_URL"] = settings.artifact_url
    return settings


def run_celery_worker(settings, nodename: str, concurrency: int = 1, loglevel: str = "info") -> None:
    """Run a Celery worker in this process; its pool children import TensorFlow."""
    from celery import signals

    from server.protocol import QUEUE
    from server.tasks import make_celery
    from server.worker import prepare_tensorflow

    signals.worker_process_init.connect(prepare_tensorflow, weak=False)
    app = make_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--hostname={nodename}",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={loglevel.upper()}",
            f"--queues={QUEUE}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _exit_with_parent(parent_pid: int) -> None:
    """Stop this worker when the serve process is gone (no orphans)."""

    def watch() -> None:
        while True:
            time.sleep(2)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(20)
                os.kill(os.getpid(), signal.SIGQUIT)
                return

    threading.Thread(target=watch, name="autoinit-parent-watch", daemon=True).start()


def _spawned_worker(env: dict[str, str], nodename: str, loglevel: str, parent_pid: int) -> None:
    os.environ.update(env)  # CUDA_VISIBLE_DEVICES before TensorFlow is imported
    from server.settings import Settings

    _exit_with_parent(parent_pid)
    run_celery_worker(Settings(), nodename, 1, loglevel)


def _start_workers(count: int, gpus: list[str], loglevel: str) -> list:
    context = multiprocessing.get_context("spawn")
    host = socket.gethostname()
    procs = []
    for index in range(count):
        env = {key: value for key, value in os.environ.items() if key.startswith("AUTOINIT_")}
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)] if gpus else "-1"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        # One OpenBLAS thread per worker unless the operator chose: the walk's NumPy products are
        # small, and threads competing with TensorFlow's made init times swing 7x (docs/DECISIONS.md).
        env["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
        name = f"autoinit-{index}-{os.getpid()}@{host}"
        proc = context.Process(
            target=_spawned_worker, args=(env, name, loglevel, os.getpid()), name=f"autoinit-worker-{index}"
        )
        proc.start()
        procs.append(proc)
    return procs


def _stop_workers(procs: list) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.is_alive()]
        for proc in alive:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        for proc in alive:
            proc.join(max(0.0, deadline - time.monotonic()))


def serve_parser() -> argparse.ArgumentParser:
    """The flags of ``autoinit serve`` (also what the container's CMD must parse)."""
    parser = argparse.ArgumentParser(prog="autoinit serve", description=serve_main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Worker processes to start here (default: one per GPU, or 1). "
        "0 with --broker: only the API; run `autoinit worker` elsewhere.",
    )
    _common_args(parser)
    return parser


def worker_parser() -> argparse.ArgumentParser:
    """The flags of ``autoinit worker``."""
    parser = argparse.ArgumentParser(prog="autoinit worker", description=worker_main.__doc__)
    parser.add_argument("--concurrency", type=int, default=1, help="Pool processes (keep 1 per GPU).")
    parser.add_argument("--gpu", help="GPU id this worker uses (sets CUDA_VISIBLE_DEVICES).")
    parser.add_argument("--name", help="Worker name (default autoinit-<random>@<host>).")
    _common_args(parser)
    return parser


def _exit_on_sigterm() -> None:
    """SIGTERM (docker stop) unwinds like Ctrl-C, so ``finally`` blocks stop the workers.

    uvicorn re-raises the signal after its own shutdown, which would end the
    process before `_stop_workers` runs; exiting via SystemExit from the
    handler lets uvicorn shut down and our cleanup run.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def serve_main(argv: Sequence[str] | None = None) -> int:
    """``autoinit serve``: the HTTP API plus its worker processes."""
    parser = serve_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings_from(args)
    gpus = detect_gpus()
    count = args.workers if args.workers is not None else max(1, len(gpus))
    if count < 0:
        parser.error(f"--workers must be 0 or more. Received: {count}.")
    if count == 0 and settings.embedded:
        log.warning(
            "--workers 0 without --broker: jobs wait until `autoinit worker "
            "--data-dir %s` runs on this machine.",
            settings.data_dir,
        )
    import uvicorn

    from server.app import create_app
    from server.connections import guarded_protocol

    app = create_app(settings)
    procs = _start_workers(count, gpus, args.log_level)
    try:
        _exit_on_sigterm()
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            timeout_graceful_shutdown=5,
            http=guarded_protocol(settings.header_timeout),
            timeout_keep_alive=settings.keep_alive_timeout,
        )
    finally:
        _stop_workers(procs)
    return 0


def worker_main(argv: Sequence[str] | None = None) -> int:
    """``autoinit worker``: one Celery worker (run one per GPU)."""
    args = worker_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = _settings_from(args)
    name = args.name or f"autoinit-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    run_celery_worker(settings, name, args.concurrency, args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "worker"):
        print("usage: python -m server.serve {serve,worker} [options]", file=sys.stderr)
        return 2
    return (serve_main if argv[0] == "serve" else worker_main)(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
