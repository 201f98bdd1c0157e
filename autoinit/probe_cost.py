"""What a probe costs in memory: one calibrated model, a pure function of a
model's per-example tensor sizes.

Two callers need it: `autoinit.probe.memory` (the worker chooses its
micro-batch) and the service's intake (a job is refused up front when even one
example at a time would not fit). The API process has no Keras, so the model
lives here, outside the `autoinit.probe` package, and imports nothing heavy.

Calibrated on pre-activation ResNet-56/164/812 without BN (peak resident growth
of a fresh process at micro-batches 1, 8 and the whole batch,
``benchmarks/bench_probe_memory.py``), rounded up: a traced pass costs a fixed
amount and a fixed amount per layer call (its graph, the executor's kernels;
the backward graph less than twice the forward's), and per example a few live
sets (kernels' scratch, outputs the executor frees late) or, backward, what
the gradient keeps (measured: 0.38-0.42 of every output, the outputs a
layer's gradient reads, e.g. a ReLU's) plus the gradients' own live set. An
eager pass (other backends) holds every output.

Example:
    >>> sizes = TensorSizes(inputs=12_288, outputs=40, live_peak=200_000, total=2_000_000, calls=60)
    >>> probe_memory_bytes(sizes, batch_size=256, micro_batch=256) > probe_memory_bytes(sizes, 256, 1)
    True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FLOAT_BYTES", "TensorSizes", "probe_graph_bytes", "probe_memory_bytes"]

FLOAT_BYTES = 4  # the probe runs in float32

_FIXED = 48 << 20
_PER_CALL = {"forward": 150_000, "backward": 250_000, "eager": 20_000}
_LIVE_SETS = 3.0
_KEPT_FOR_GRADIENT = 0.45
_EAGER_OUTPUTS = 1.2


@dataclass(frozen=True)
class TensorSizes:
    """Per-example bytes of a model's tensors, and its number of layer calls."""

    inputs: int
    outputs: int
    live_peak: int
    """Largest set of layer outputs alive at once, in execution order."""
    total: int
    """All layer outputs together."""
    calls: int


def _kind(backward: bool, compiled: bool) -> str:
    return "backward" if backward else ("forward" if compiled else "eager")


def probe_graph_bytes(calls: int, *, backward: bool = False, compiled: bool = True) -> int:
    """What the probe costs whatever its batch: a fixed part and its graph."""
    return int(_FIXED + _PER_CALL[_kind(backward, compiled)] * calls)


def probe_memory_bytes(
    sizes: TensorSizes,
    batch_size: int,
    micro_batch: int | None = None,
    *,
    backward: bool = False,
    compiled: bool = True,
) -> int:
    """Bytes a probe adds to the process's peak memory, for ``batch_size``
    examples (held on the host whole) run ``micro_batch`` at a time."""
    micro = min(batch_size, micro_batch or batch_size)
    held = batch_size * (sizes.inputs + (sizes.outputs if backward else 0))  # the batch, and R
    if backward:
        per_example = _KEPT_FOR_GRADIENT * sizes.total + _LIVE_SETS * sizes.live_peak
    elif compiled:
        per_example = _LIVE_SETS * sizes.live_peak
    else:
        per_example = _EAGER_OUTPUTS * sizes.total
    return int(
        probe_graph_bytes(sizes.calls, backward=backward, compiled=compiled) + held + micro * per_example
    )
