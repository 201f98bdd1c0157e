"""How much memory a probe needs, known from the model's output shapes before
anything runs, and the micro-batch that fits a budget.

Per example, the graph's tensors are walked in the order the probe runs them:
a layer output lives from its call until its last consumer has run. The
compiled forward pass holds the peak of that live set; the eager pass (other
backends) holds every output until the pass ends; the backward pass keeps
what the gradient needs, bounded by every output, plus the gradients' live
set. Float32 elements; unknown dimensions count as ``open_dim()`` (what the probe feeds).
The calibrated cost model itself is `autoinit.probe_cost` (Keras-free, so the
service's API process uses the same one).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import keras

from autoinit.keras_adapter.composite import closed_shape, open_length
from autoinit.keras_adapter.graph import LayerCall, model_inputs, run_graph
from autoinit.probe_cost import FLOAT_BYTES, TensorSizes, probe_memory_bytes

__all__ = [
    "ActivationSizes",
    "activation_sizes",
    "estimate_probe_memory",
    "choose_micro_batch",
    "DEFAULT_MEMORY_BUDGET",
]

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Bytes a probe may grow by, by default (1 GiB): the forward probe of
ResNet-812 at a batch of 256 runs in one micro-batch."""


#: Per-example bytes of a model's tensors (`autoinit.probe_cost.TensorSizes`).
ActivationSizes = TensorSizes


def _elements(shape: tuple) -> int:
    return math.prod(closed_shape(shape)[1:]) if shape else 1


def activation_sizes(model: keras.Model) -> ActivationSizes:
    """Walk the graph once with placeholders (nothing runs) and size its tensors."""
    with open_length(model):
        return _activation_sizes(model)


def _activation_sizes(model: keras.Model) -> ActivationSizes:
    size: dict[int, int] = {}
    last_use: dict[int, int] = {}
    produced: dict[int, int] = {}
    step = 0
    counter = iter(range(1 << 62))

    inputs = []
    for _, shape, _ in model_inputs(model):
        token = next(counter)
        size[token], produced[token] = _elements(shape), 0
        inputs.append(token)

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> Any:
        nonlocal step
        step += 1
        for token in flat:
            if isinstance(token, int):
                last_use[token] = step
        outputs = []
        for shape in call.output_shapes or [()]:
            token = next(counter)
            size[token], produced[token] = _elements(shape), step
            outputs.append(token)
        return outputs

    final = run_graph(model, inputs, visit)
    for token in final:
        if isinstance(token, int):
            last_use[token] = step + 1
    deltas: dict[int, int] = defaultdict(int)
    for token, elements in size.items():
        deltas[produced[token]] += elements
        deltas[last_use.get(token, produced[token]) + 1] -= elements
    live = peak = 0
    for moment in sorted(deltas):
        live += deltas[moment]
        peak = max(peak, live)
    return ActivationSizes(
        inputs=FLOAT_BYTES * sum(size[t] for t in inputs),
        outputs=FLOAT_BYTES * sum(size[t] for t in final if isinstance(t, int)),
        live_peak=FLOAT_BYTES * peak,
        total=FLOAT_BYTES * sum(size.values()),
        calls=step,
    )


def estimate_probe_memory(
    model: keras.Model,
    batch_size: int,
    micro_batch: int | None = None,
    *,
    backward: bool = False,
    compiled: bool | None = None,
    sizes: ActivationSizes | None = None,
) -> int:
    """Bytes a probe of ``model`` is expected to add to the process's peak
    memory, for ``batch_size`` examples run ``micro_batch`` at a time.

    Meant for refusing a job up front: with ``micro_batch=1`` it is the least
    any probe of this model needs. Known from output shapes; nothing runs.

    Args:
        model: a Functional or Sequential Keras model.
        batch_size: examples in the probe batch (held on the host whole).
        micro_batch: examples per pass; default ``batch_size``.
        backward: the backward probe (``probe(backward=True)``).
        compiled: a traced graph (default on TensorFlow) or eager passes.
        sizes: ``activation_sizes(model)``, when already computed.
    """
    sizes = sizes or activation_sizes(model)
    compiled = keras.backend.backend() == "tensorflow" if compiled is None else compiled
    return probe_memory_bytes(sizes, batch_size, micro_batch, backward=backward, compiled=compiled)


def choose_micro_batch(
    model: keras.Model,
    batch_size: int,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    *,
    backward: bool = False,
    compiled: bool | None = None,
    sizes: ActivationSizes | None = None,
) -> int:
    """The largest micro-batch (at least 1) whose estimated probe memory fits
    the budget; the batch is then run in ``ceil(batch / micro)`` near-equal parts."""
    sizes = sizes or activation_sizes(model)
    low, high = 1, max(1, batch_size)
    while low < high:
        middle = (low + high + 1) // 2
        fits = estimate_probe_memory(
            model, batch_size, middle, backward=backward, compiled=compiled, sizes=sizes
        )
        if fits <= memory_budget_bytes:
            low = middle
        else:
            high = middle - 1
    return low
