"""``probe``: one Gaussian-input probe of one model, micro-batch by micro-batch."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from autoinit.keras_adapter.graph import functional_of, model_inputs, shape_of
from autoinit.probe.backward import projections
from autoinit.probe.forward import PassLayout
from autoinit.probe.inputs import gaussian_inputs
from autoinit.probe.memory import DEFAULT_MEMORY_BUDGET, choose_micro_batch
from autoinit.probe.program import program_for
from autoinit.probe.progress import ProbeProgress
from autoinit.probe.reducers import MomentSums, Reducer

__all__ = ["probe", "micro_batches"]


class _StateGuard:
    """Restores non-trainable state (BN moving stats, dropout RNG) after a
    training-mode pass, and seeds dropout RNGs for reproducibility."""

    def __init__(self, model: keras.Model, seed: int) -> None:
        self.variables = list(model.non_trainable_variables)
        self.saved = [v.numpy() for v in self.variables]
        for i, v in enumerate(self.variables):
            if v.path.endswith("seed_generator_state"):
                v.assign(np.array([seed + 7919 * i, 0], dtype=v.dtype))

    def restore(self) -> None:
        for v, value in zip(self.variables, self.saved):
            v.assign(value)


def micro_batches(batch_size: int, micro_batch: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``ceil(batch / micro)`` parts whose sizes differ by at most one."""
    parts = max(1, math.ceil(batch_size / max(1, micro_batch)))
    edges = [round(i * batch_size / parts) for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def probe(
    model: keras.Model,
    batch_size: int = 256,
    seed: int = 0,
    input_mean: float = 0.0,
    input_var: float = 1.0,
    backward: bool = False,
    compiled: bool | None = None,
    *,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    micro_batch: int | None = None,
    progress: Callable[[float], None] | None = None,
    stage: Callable[[str], None] | None = None,
) -> list[dict]:
    """Measure each layer's output mean/variance on Gaussian input.

    The batch runs in micro-batches, each reduced to per-layer moments inside
    the pass and merged exactly (``reducers``), so memory follows one
    micro-batch's live set, not the batch times every activation. Batch
    normalization normalizes each micro-batch by its own statistics (one
    micro-batch, the whole batch, unless the budget forces a split).

    Args:
        model: a Functional or Sequential Keras model (nested models are
            descended into; their layers are named ``outer/inner``).
        batch_size: examples in the probe batch.
        seed: seeds the input, the dropout masks and the backward projection.
        input_mean, input_var: the Gaussian input's moments.
        backward: also measure ``grad_var``, the variance of the gradient of
            ``L = sum(output * R)`` (``R`` standard normal, fixed) with
            respect to each layer's output.
        compiled: one traced graph per model, reused for every later probe
            of it (default on TensorFlow); ``False`` runs the same passes
            eagerly (the only way on other backends).
        memory_budget_bytes: the micro-batch is the largest whose estimated
            memory (``estimate_probe_memory``) fits; never below one example.
        micro_batch: examples per pass, overriding the budget.
        progress: called with the fraction of the probe done: after each
            micro-batch, and about 20 times within each pass while it runs
            (inside the compiled graph too), so one long pass moves it; and
            while a pass is first traced, as its layers are.
        stage: called with what the probe is doing, when that changes:
            ``"tracing"`` (a pass's first call builds its graph; seconds on
            a deep model), then ``"running"`` (``autoinit.probe.progress``).

    Returns:
        One JSON-serializable dict per layer call in topological order:
        ``name``, ``class_name``, ``mean``, ``var``, ``has_weights``,
        ``output_shape`` (and ``grad_var``; and ``pre_activation``, its
        ``mean``/``var``, for a weighted layer with a fused activation).
        Overflowed values are None.
    """
    functional_of(model)
    compiled = keras.backend.backend() == "tensorflow" if compiled is None else bool(compiled)
    program = program_for(model, compiled)
    if micro_batch is None:
        sizes = program.sizes
        micro_batch = choose_micro_batch(
            model, batch_size, memory_budget_bytes, backward=backward, compiled=compiled, sizes=sizes
        )
    inputs = gaussian_inputs(model, batch_size, seed, input_mean, input_var)
    output_shapes = _example_output_shapes(model, inputs) if backward else []
    values, grads = MomentSums(), MomentSums()
    parts = micro_batches(batch_size, micro_batch)
    guard = _StateGuard(model, seed)
    report = ProbeProgress(len(parts), progress, stage)
    program.tick, program.trace_tick, program.on_stage = report.tick, report.trace_tick, report.on_stage
    try:
        for index, (start, stop) in enumerate(parts):
            report.start(index)
            part = [x[start:stop] for x in inputs]
            if backward:
                rs = projections(seed + 1, output_shapes, start, stop)
                rows, sizes, grad_rows, grad_sizes = program.backward(part, rs)
                _merge(grads, grad_rows, Reducer.counts(grad_sizes))
            else:
                rows, sizes = program.forward(part)
            _merge(values, rows, Reducer.counts(sizes))
            report.done()
    finally:
        program.tick = program.trace_tick = program.on_stage = None
        guard.restore()
    layout = program.layouts["backward" if backward else "forward"]
    return _records(model, layout, values.moments(), grads.moments() if backward else None)


def _merge(sums: MomentSums, rows: np.ndarray, counts: np.ndarray) -> None:
    sums.add(counts, Reducer.moments(rows, counts))


def _example_output_shapes(model: keras.Model, inputs: list[np.ndarray]) -> list[tuple]:
    """Per-example shape of each model output (open dimensions resolved for this batch)."""
    graph = functional_of(model)
    shapes = [shape_of(y)[1:] for y in graph.outputs]
    if all(None not in shape for shape in shapes):
        return shapes
    specs = [keras.KerasTensor((1, *x.shape[1:]), dtype=str(x.dtype)) for x in inputs]
    spec = model.compute_output_spec(specs if len(specs) > 1 else specs[0])
    return [tuple(int(d) for d in y.shape[1:]) for y in keras.tree.flatten(spec)]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _records(
    model: keras.Model, layout: PassLayout, stats: np.ndarray, grads: np.ndarray | None
) -> list[dict]:
    records = [
        {"name": name, "class_name": "InputLayer", "has_weights": False, "output_shape": list(shape)}
        for name, shape, _ in model_inputs(model)
    ]
    for call in layout.calls:
        records.append(
            {
                "name": call.name,
                "class_name": call.class_name,
                "has_weights": bool(getattr(call.layer, "weights", None)),
                "output_shape": list(call.output_shapes[0]) if call.output_shapes else [],
            }
        )
    rows = list(range(len(records) - len(layout.calls))) + layout.rows
    for record, row in zip(records, rows):
        record["mean"] = _finite(stats[row, 0])
        record["var"] = _finite(stats[row, 1])
    first_call = len(rows) - len(layout.calls)
    for position, row in layout.pre_rows.items():
        records[first_call + position]["pre_activation"] = {
            "mean": _finite(stats[row, 0]),
            "var": _finite(stats[row, 1]),
        }
    if grads is not None:
        # No key where no gradient was taken (inputs, integer tensors): a gap,
        # which the figures tell apart from an overflow (null).
        for row, position in enumerate(layout.grad_calls):
            records[first_call + position]["grad_var"] = _finite(grads[row, 1])
    return records
