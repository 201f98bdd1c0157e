"""Probe time and peak memory against one compiled training-mode pass.

For each model (pre-activation ResNet-56/164/812 without BN, ``autoinit.zoo``)
and batch (64, 256), each measure runs in a fresh subprocess:

* ``forward``: ``tf.function(lambda x: model(x, training=True))``, first call
  (tracing included), result on the host: the probe's reference;
* ``grad``: one compiled forward and backward pass, the gradient of
  ``sum(model(x) * R)`` with respect to the weights (a training step's),
  first call, on the host: the backward probe's reference (the probe takes
  the gradient with respect to every layer output instead, not the weights);
* ``probe``: ``autoinit.probe.probe(model, batch_size=...)``, first call;
* ``backward``: ``probe(model, backward=True)``, first call.

Modules are imported before the clock starts (a worker imports them once,
whatever it probes). ``trace`` is the part of the first call spent building the graph: the
reference's ``get_concrete_function``, the probe's time to its ``"running"``
stage (its walk of the model and its tracing, ``probe(stage=...)``); the rest
runs the graph.

Memory is the growth of the process's peak resident set during the call:
the peak (``VmHWM``) is reset just before the call (``/proc/self/clear_refs``)
and read after it, minus the resident set just before. ``estimate`` is
``autoinit.probe.estimate_probe_memory`` for the micro-batch the probe chose.
Requirement (issue 11): the default probe within 1.5x the forward's time and
peak-memory growth on ResNet-812 at batch 64, and the backward probe the
same against ``grad``. ``grad`` keeps every activation the weight gradients
need, some 0.4 GB per 6 examples on ResNet-812: it is skipped (``-``) where
``--max-reference-gb`` (default 8) would be exceeded.

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


def _reference(kind: str, model, x):
    """``(trace, run)``: the reference pass of ``kind`` traced, and its call."""
    import keras
    import tensorflow as tf

    if kind == "forward":
        function = tf.function(lambda t: model(t, training=True), autograph=False)
        return (lambda: function.get_concrete_function(x)), lambda: keras.ops.convert_to_numpy(function(x))
    projection = tf.random.stateless_normal(model.outputs[0].shape[1:], seed=(1, 2))

    def step(t):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(t, training=True) * projection)
        return tape.gradient(loss, model.trainable_variables)

    function = tf.function(step, autograph=False)
    return (lambda: function.get_concrete_function(x)), lambda: [g.numpy() for g in function(x)]


def measure(kind: str, depth: int, batch: int) -> dict:
    """One measure in this (fresh) process: seconds (and of them, tracing) and
    peak RSS growth in bytes."""
    import gc
    import time

    import keras

    import autoinit.keras_adapter.rules  # noqa: F401  (the walk imports them: once a process, not a model)
    from autoinit import zoo
    from autoinit.probe import choose_micro_batch, estimate_probe_memory, gaussian_inputs, probe

    model = zoo.preact_resnet(depth, batch_norm=False)
    x = keras.ops.convert_to_tensor(gaussian_inputs(model, batch, seed=0)[0])
    marks: dict[str, float] = {}
    if kind in ("forward", "grad"):
        trace, run = _reference(kind, model, x)

        def call():
            trace()
            marks["running"] = time.perf_counter()
            run()
    else:

        def call():
            mark = lambda stage: marks.setdefault(stage, time.perf_counter())  # noqa: E731
            probe(model, batch_size=batch, backward=kind == "backward", stage=mark)

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
        "trace_seconds": marks.get("running", start) - start,
        "cpu_seconds": cpu,
        "growth": (peak - before) * 1024,
        "micro_batch": micro,
        "estimate": estimate_probe_memory(model, batch, micro, backward=backward),
        "reference_gb": 0.5e-9 * batch * _activation_bytes(model),
    }


def _activation_bytes(model) -> int:
    from autoinit.probe.memory import activation_sizes

    return activation_sizes(model).total


def run_fresh(kind: str, depth: int, batch: int) -> dict:
    """``measure`` in a new Python process, so no figure inherits another's state."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", kind, str(depth), str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {depth} {batch} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f}"


def _row(depth: int, batch: int, kind: str, reference: str, r: dict, ref: dict | None) -> list[str]:
    def pair(key: str, fmt) -> list[str]:
        if ref is None:
            return ["-", fmt(r[key]), "-"]
        return [fmt(ref[key]), fmt(r[key]), f"{r[key] / max(ref[key], 1e-9):.2f}x"]

    seconds = lambda m: f"{m['seconds']:.2f} ({m['trace_seconds']:.2f})"  # noqa: E731
    return [
        f"ResNet-{depth}",
        str(batch),
        kind,
        str(r["micro_batch"]),
        reference,
        "-" if ref is None else seconds(ref),
        seconds(r),
        "-" if ref is None else f"{r['seconds'] / ref['seconds']:.2f}x",
        *pair("cpu_seconds", lambda v: f"{v:.2f}"),
        *pair("growth", _gb),
        _gb(r["estimate"]),
    ]


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
            parser.add_argument("--max-reference-gb", type=float, default=8.0),
        ),
    )
    _common.banner("bench_probe_memory" + (" --quick" if args.quick else ""))
    print(
        "# each figure from a fresh process; s = wall seconds of the first call (tracing included; in\n"
        "# brackets, the part spent before the graph runs: walk and tracing),\n"
        "# cpu = its CPU seconds (all threads; steadier than wall on a shared machine),\n"
        "# +GB = peak resident growth during the call; micro = examples per pass; estimate = estimate_probe_memory"
    )
    depths = [56, 164] if args.quick else args.depths
    rows = []
    for depth in depths:
        for batch in args.batches:
            for kind in args.kinds:
                r = run_fresh(kind, depth, batch)
                reference = "forward" if kind == "probe" else "grad"
                if r["reference_gb"] > args.max_reference_gb and reference == "grad":
                    ref = None
                else:
                    ref = run_fresh(reference, depth, batch)
                rows.append(_row(depth, batch, kind, reference, r, ref))
                print(f"  ResNet-{depth} batch {batch} {kind}: done", flush=True)
    header = [
        "model",
        "batch",
        "probe",
        "micro",
        "reference",
        "ref s (trace)",
        "probe s (trace)",
        "s ratio",
        "ref cpu",
        "probe cpu",
        "cpu ratio",
        "ref +GB",
        "probe +GB",
        "GB ratio",
        "estimate GB",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
