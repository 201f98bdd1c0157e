"""Benchmark the service: upload->done latency, API memory, jobs per minute.

Starts an embedded-mode server (``autoinit serve``) on a free port with a
temporary data directory, unless ``--url`` names a running one, then:

1. one warm-up job (the worker has imported TensorFlow and traced once);
2. ``--latency-jobs`` sequential All-CNN-C uploads with ``?wait``: p50/p95
   of upload -> finished job, as a pipeline sees it;
3. ``--clients`` concurrent clients, ``--jobs-per-client`` uploads each:
   jobs per minute, and /healthz latency while the workers are busy;
4. the API process's resident memory (from /healthz);
5. with ``--models``, one job per named page example
   (``frontend/examples/<name>.json``, ``examples`` for all of them) with
   the page's default options (``GET /options``), one at a time: a table of
   upload -> done latency, the worker processes' peak resident memory
   (sampled from /proc, so only for a server this script started or
   ``--server-pid`` names) and the distinct progress values a 0.2 s poller
   of ``GET /jobs/{id}`` saw.

Example:
    python benchmarks/bench_service.py --workers 1 --clients 4
    python benchmarks/bench_service.py --latency-jobs 0 --clients 0 \
        --models all_cnn_c,preact_resnet164,preact_resnet812_nobn
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
EXAMPLES = REPO / "frontend" / "examples"
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
    answer = client.post(
        "/initialize",
        params={"wait": 600},
        files={"model": ("model.json", body)},
        data={"options": json.dumps(options)},
    )
    job = answer.json()
    while job.get("status") not in ("succeeded", "failed"):
        time.sleep(0.1)
        job = client.get(f"/jobs/{job['id']}").json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"job failed: {job['error']}")
    return time.perf_counter() - start


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker_rss(server_pid: int | None, api_pid: int | None) -> int:
    """Largest resident set among the server's processes other than the API's
    and the serve process itself: the TensorFlow workers."""
    if server_pid is None:
        return 0
    pids = [p for p in _descendants(server_pid) if p not in (server_pid, api_pid)]
    return max((_rss(p) for p in pids), default=0)


def _example_job(client: httpx.Client, name: str, options: dict, server_pid: int | None) -> dict:
    """One page example, upload -> done, watched every 0.2 s."""
    body = (EXAMPLES / f"{name}.json").read_bytes()
    api_pid = client.get("/healthz").json().get("pid")
    start = time.perf_counter()
    answer = client.post(
        "/initialize", files={"model": (f"{name}.json", body)}, data={"options": json.dumps(options)}
    )
    job = answer.json()
    if answer.status_code >= 400:
        return {
            "name": name,
            "status": f"refused {answer.status_code}",
            "detail": job.get("detail"),
            "seconds": time.perf_counter() - start,
            "peak_rss": 0,
            "progress": [],
        }
    peak, progress = 0, []
    while job.get("status") not in ("succeeded", "failed"):
        peak = max(peak, _worker_rss(server_pid, api_pid))
        if not progress or progress[-1][:2] != (job["progress"], job["stage"]):
            progress.append((job["progress"], job["stage"], time.perf_counter() - start))
        time.sleep(0.2)
        job = client.get(f"/jobs/{job['id']}").json()
    seconds = time.perf_counter() - start
    error = job.get("error") or {}
    return {
        "name": name,
        "status": job["status"],
        "detail": error.get("detail"),
        "seconds": seconds,
        "peak_rss": peak,
        "progress": progress,
    }


def _examples_table(client: httpx.Client, names: list[str], server_pid: int | None) -> None:
    options = client.get("/options").json()["defaults"]
    print(f"\npage examples, one job at a time, the page's default options {json.dumps(options)}:")
    rows = []
    for name in names:
        row = _example_job(client, name, options, server_pid)
        rows.append(row)
        values = [p for p, _, _ in row["progress"]]
        print(
            f"  {name}: {row['status']} in {row['seconds']:.1f} s; progress seen (from s): "
            f"{[f'{p:.2f} {s} ({t:.1f})' for p, s, t in row['progress']]}",
            flush=True,
        )
        if row["detail"]:
            print(f"    {row['detail']}")
        if values != sorted(values):
            print("    progress went backwards")
    print("\n| model | status | upload->done (s) | worker peak RSS (GiB) | distinct progress values seen |")
    print("|---|---|---|---|---|")
    for row in rows:
        rss = f"{row['peak_rss'] / 2**30:.2f}" if row["peak_rss"] else "n/a"
        distinct = len({p for p, _, _ in row["progress"]})
        print(f"| {row['name']} | {row['status']} | {row['seconds']:.1f} | {rss} | {distinct} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A running server (default: start one).")
    parser.add_argument("--workers", type=int, default=1, help="Workers of the started server.")
    parser.add_argument("--model", default="all_cnn_c", choices=["all_cnn_c", "mlp"])
    parser.add_argument("--probe-batch", type=int, default=256)
    parser.add_argument("--latency-jobs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs-per-client", type=int, default=2)
    parser.add_argument(
        "--models",
        default="",
        help="Comma-separated page examples (frontend/examples), or 'examples' "
        "for all: one job each with the page's default options, in a table.",
    )
    parser.add_argument(
        "--server-pid", type=int, help="With --url: the serve process, for the workers' memory."
    )
    args = parser.parse_args(argv)
    index = json.loads((EXAMPLES / "index.json").read_text())
    names = (
        [e["name"] for e in index] if args.models == "examples" else [n for n in args.models.split(",") if n]
    )
    unknown = sorted(set(names) - {e["name"] for e in index})
    if unknown:
        parser.error(f"--models should name page examples {[e['name'] for e in index]}. Received: {unknown}.")

    body = _model_config(args.model)
    options = {"probe_batch": args.probe_batch}
    server = None
    url = args.url
    server_pid = args.server_pid
    if url is None:
        from service_helpers import ServiceProcess

        data_dir = Path(tempfile.mkdtemp(prefix="autoinit-bench-")) / "data"
        server = ServiceProcess(data_dir, "--workers", str(args.workers))
        print(f"starting server on {server.url} with {args.workers} worker(s); log: {server.log_path}")
        started = time.perf_counter()
        server.wait_ready()
        print(f"server ready (a worker answers) after {time.perf_counter() - started:.1f} s")
        url = server.url
        server_pid = server.proc.pid
    try:
        with httpx.Client(base_url=url, timeout=900) as client:
            warm = _run_job(client, body, options)
            print(f"warm-up job ({args.model}): {warm:.2f} s")
            latencies = [_run_job(client, body, options) for _ in range(args.latency_jobs)]
            if latencies:
                print(
                    f"upload->done latency, warm worker, {len(latencies)} jobs: "
                    f"p50 {_percentile(latencies, 50):.2f} s, "
                    f"p95 {_percentile(latencies, 95):.2f} s"
                )

            if args.clients > 0:
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
                print(
                    f"{args.clients} concurrent clients, {total} jobs in {elapsed:.1f} s: "
                    f"{60 * total / elapsed:.1f} jobs/minute; per-job latency p50 "
                    f"{_percentile(flat, 50):.2f} s, p95 {_percentile(flat, 95):.2f} s"
                )
                if health_times:
                    print(
                        f"/healthz while busy: p50 {1000 * statistics.median(health_times):.1f} ms, "
                        f"max {1000 * max(health_times):.1f} ms ({len(health_times)} calls)"
                    )
            health = client.get("/healthz").json()
            rss = health.get("rss_bytes")
            print(
                f"API process RSS: {rss / 2**20:.1f} MiB" if rss else "API RSS unknown",
                f"(tensorflow imported in API: {health['tensorflow_imported']})",
            )
            if names:
                _examples_table(client, names, server_pid)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.data_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
