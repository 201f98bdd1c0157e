"""Probe time and peak memory against one compiled training-mode forward pass.

For each model (pre-activation ResNet-56/164/812 without BN, ``autoinit.zoo``)
and batch (64, 256), each measure runs in a fresh subprocess:

* ``forward``: ``tf.function(lambda x: model(x, training=True))``, first call
  (tracing included), result on the host;
* ``probe``: ``autoinit.probe.probe(model, batch_size=...)``, first call;
* ``backward``: ``probe(model, backward=True)``, first call.

Memory is the growth of the process's peak resident set during the call:
the peak (``VmHWM``) is reset just before the call (``/proc/self/clear_refs``)
and read after it, minus the resident set just before. ``estimate`` is
``autoinit.probe.estimate_probe_memory`` for the micro-batch the probe chose.
Requirement (issue 11): the default probe within 1.5x the forward's time and
peak-memory growth on ResNet-812 at batch 64.

Run: ``.venv/bin/python benchmarks/bench_probe_memory.py [--quick] [--depths 56 164] [--batches 64]
[--kinds probe]`` (``--quick``: ResNet-56 and 164 only).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import _common
from _common import table

HERE = Path(__file__).resolve().parent


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(kind: str, depth: int, batch: int) -> dict:
    """One measure in this (fresh) process: seconds and peak RSS growth in bytes."""
    import gc
    import time

    import keras
    import tensorflow as tf

    from autoinit import zoo
    from autoinit.probe import choose_micro_batch, estimate_probe_memory, gaussian_inputs, probe

    model = zoo.preact_resnet(depth, batch_norm=False)
    x = keras.ops.convert_to_tensor(gaussian_inputs(model, batch, seed=0)[0])
    forward = tf.function(lambda t: model(t, training=True), autograph=False)
    if kind == "forward":
        call = lambda: keras.ops.convert_to_numpy(forward(x))  # noqa: E731
    elif kind == "probe":
        call = lambda: probe(model, batch_size=batch)  # noqa: E731
    else:
        call = lambda: probe(model, batch_size=batch, backward=True)  # noqa: E731
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak resident set (VmHWM)
    before = _status_kib("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _status_kib("VmHWM")
    backward = kind == "backward"
    micro = choose_micro_batch(model, batch, backward=backward)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "growth": (peak - before) * 1024,
        "micro_batch": micro,
        "estimate": estimate_probe_memory(model, batch, micro, backward=backward),
    }


def run_fresh(kind: str, depth: int, batch: int) -> dict:
    """``measure`` in a new Python process, so no figure inherits another's state."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", kind, str(depth), str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {depth} {batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f}"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    args = _common.parse_args(
        __doc__.splitlines()[0],
        lambda parser: (
            parser.add_argument("--depths", type=int, nargs="+", default=[56, 164, 812]),
            parser.add_argument("--batches", type=int, nargs="+", default=[64, 256]),
            parser.add_argument(
                "--kinds", nargs="+", default=["probe", "backward"], choices=["probe", "backward"]
            ),
        ),
    )
    _common.banner("bench_probe_memory" + (" --quick" if args.quick else ""))
    print(
        "# each figure from a fresh process; s = wall seconds of the first call (tracing included),\n"
        "# cpu = its CPU seconds (all threads; steadier than wall on a shared machine),\n"
        "# +GB = peak resident growth during the call; micro = examples per pass; estimate = estimate_probe_memory"
    )
    depths = [56, 164] if args.quick else args.depths
    rows = []
    for depth in depths:
        for batch in args.batches:
            fwd = run_fresh("forward", depth, batch)
            for kind in args.kinds:
                r = run_fresh(kind, depth, batch)
                rows.append(
                    [
                        f"ResNet-{depth}",
                        str(batch),
                        kind,
                        str(r["micro_batch"]),
                        f"{fwd['seconds']:.2f}",
                        f"{r['seconds']:.2f}",
                        f"{r['seconds'] / fwd['seconds']:.2f}x",
                        f"{fwd['cpu_seconds']:.2f}",
                        f"{r['cpu_seconds']:.2f}",
                        f"{r['cpu_seconds'] / fwd['cpu_seconds']:.2f}x",
                        _gb(fwd["growth"]),
                        _gb(r["growth"]),
                        f"{r['growth'] / max(fwd['growth'], 1):.2f}x",
                        _gb(r["estimate"]),
                    ]
                )
                print(f"  ResNet-{depth} batch {batch} {kind}: done", flush=True)
    header = [
        "model",
        "batch",
        "probe",
        "micro",
        "fwd s",
        "probe s",
        "s ratio",
        "fwd cpu",
        "probe cpu",
        "cpu ratio",
        "fwd +GB",
        "probe +GB",
        "GB ratio",
        "estimate GB",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
