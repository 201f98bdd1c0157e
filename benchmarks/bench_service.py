"""Benchmark the service: upload->done latency, API memory, jobs per minute.

Starts an embedded-mode server (``autoinit serve``) on a free port with a
temporary data directory, unless ``--url`` names a running one, then:

1. one warm-up job (the worker has imported TensorFlow and traced once);
2. ``--latency-jobs`` sequential All-CNN-C uploads with ``?wait``: p50/p95
   of upload -> finished job, as a pipeline sees it;
3. ``--clients`` concurrent clients, ``--jobs-per-client`` uploads each:
   jobs per minute, and /healthz latency while the workers are busy;
4. the API process's resident memory (from /healthz).

Example:
    python benchmarks/bench_service.py --workers 1 --clients 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "server"))
sys.path.insert(0, str(REPO))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _model_config(name: str) -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if name == "all_cnn_c":
        from autoinit.zoo import all_cnn_c

        return all_cnn_c().to_json()
    from service_helpers import mlp_config

    return json.dumps(mlp_config())


def _run_job(client: httpx.Client, body: str, options: dict) -> float:
    start = time.perf_counter()
    answer = client.post("/initialize", params={"wait": 600},
                         files={"model": ("model.json", body)},
                         data={"options": json.dumps(options)})
    job = answer.json()
    while job.get("status") not in ("succeeded", "failed"):
        time.sleep(0.1)
        job = client.get(f"/jobs/{job['id']}").json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"job failed: {job['error']}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A running server (default: start one).")
    parser.add_argument("--workers", type=int, default=1, help="Workers of the started server.")
    parser.add_argument("--model", default="all_cnn_c", choices=["all_cnn_c", "mlp"])
    parser.add_argument("--probe-batch", type=int, default=256)
    parser.add_argument("--latency-jobs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs-per-client", type=int, default=2)
    args = parser.parse_args(argv)

    body = _model_config(args.model)
    options = {"probe_batch": args.probe_batch}
    server = None
    url = args.url
    if url is None:
        from service_helpers import ServiceProcess

        data_dir = Path(tempfile.mkdtemp(prefix="autoinit-bench-")) / "data"
        server = ServiceProcess(data_dir, "--workers", str(args.workers))
        print(f"starting server on {server.url} with {args.workers} worker(s); "
              f"log: {server.log_path}")
        started = time.perf_counter()
        server.wait_ready()
        print(f"server ready (a worker answers) after {time.perf_counter() - started:.1f} s")
        url = server.url
    try:
        with httpx.Client(base_url=url, timeout=900) as client:
            warm = _run_job(client, body, options)
            print(f"warm-up job ({args.model}): {warm:.2f} s")
            latencies = [_run_job(client, body, options) for _ in range(args.latency_jobs)]
            print(f"upload->done latency, warm worker, {len(latencies)} jobs: "
                  f"p50 {_percentile(latencies, 50):.2f} s, p95 {_percentile(latencies, 95):.2f} s")

            health_times: list[float] = []
            stop = threading.Event()

            def watch_health() -> None:
                while not stop.is_set():
                    start = time.perf_counter()
                    client.get("/healthz")
                    health_times.append(time.perf_counter() - start)
                    time.sleep(0.2)

            watcher = threading.Thread(target=watch_health, daemon=True)
            watcher.start()
            total = args.clients * args.jobs_per_client
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                def one_client(_: int) -> list[float]:
                    with httpx.Client(base_url=url, timeout=900) as own:
                        return [_run_job(own, body, options) for _ in range(args.jobs_per_client)]

                per_client = list(pool.map(one_client, range(args.clients)))
            elapsed = time.perf_counter() - start
            stop.set()
            watcher.join()
            flat = [t for times in per_client for t in times]
            print(f"{args.clients} concurrent clients, {total} jobs in {elapsed:.1f} s: "
                  f"{60 * total / elapsed:.1f} jobs/minute; per-job latency p50 "
                  f"{_percentile(flat, 50):.2f} s, p95 {_percentile(flat, 95):.2f} s")
            if health_times:
                print(f"/healthz while busy: p50 {1000 * statistics.median(health_times):.1f} ms, "
                      f"max {1000 * max(health_times):.1f} ms ({len(health_times)} calls)")
            health = client.get("/healthz").json()
            rss = health.get("rss_bytes")
            print(f"API process RSS: {rss / 2**20:.1f} MiB" if rss else "API RSS unknown",
                  f"(tensorflow imported in API: {health['tensorflow_imported']})")
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
