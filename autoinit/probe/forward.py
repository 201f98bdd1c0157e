"""The forward probe: the graph interpreted in training mode, each layer
output reduced to ``[mean, var]`` (eagerly, or as one traced graph)."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.keras_adapter.graph import LayerCall, model_inputs, run_graph
from autoinit.probe.reducers import BatchedReducer, InlineReducer, reducer as new_reducer

__all__ = ["run_layers", "layer_records", "probe_forward", "probe_compiled"]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _input_records(model: keras.Model) -> list[dict]:
    return [
        {"name": name, "class_name": "InputLayer", "has_weights": False, "output_shape": list(shape)}
        for name, shape, _ in model_inputs(model)
    ]


def run_layers(
    model: keras.Model,
    inputs: list,
    hook: Callable[[Any], Any] | None = None,
    reducer: InlineReducer | BatchedReducer | None = None,
):
    """Interpret the graph in training mode; returns ``(calls, stats, taps,
    outputs)`` with ``stats`` one ``[n, 2]`` tensor of ``[mean, var]`` rows
    (inputs first, then one per layer call)."""
    calls: list[LayerCall] = []
    reducer = reducer or new_reducer()
    tensors = [keras.ops.convert_to_tensor(x) for x in inputs]
    for x in tensors:
        reducer.add(x)
    taps: list[Any] = []

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> Any:
        kwargs = dict(kwargs)
        kwargs["training"] = True
        outputs = call.layer(*args, **kwargs)
        flat_out = keras.tree.flatten(outputs)
        if hook is not None:
            flat_out = [hook(y) for y in flat_out]
            taps.append(flat_out[0])
        calls.append(call)
        reducer.add(flat_out[0])
        return flat_out

    outputs = run_graph(model, tensors, visit)
    return calls, reducer.result(), taps, outputs


def layer_records(
    model: keras.Model, calls: list[LayerCall], stats: np.ndarray, grads: list[float | None] | None
) -> list[dict]:
    records = _input_records(model)
    for call in calls:
        records.append(
            {
                "name": call.name,
                "class_name": call.class_name,
                "has_weights": bool(getattr(call.layer, "weights", None)),
                "output_shape": list(call.output_shapes[0]) if call.output_shapes else [],
            }
        )
    for i, record in enumerate(records):
        record["mean"] = _finite(stats[i, 0])
        record["var"] = _finite(stats[i, 1])
        # No key where no gradient was taken (inputs, integer tensors): a gap,
        # which the figures tell apart from an overflow (null).
        if grads is not None and i < len(grads) and grads[i] is not None:
            record["grad_var"] = _finite(grads[i])
    return records


def probe_forward(model: keras.Model, inputs: list) -> list[dict]:
    calls, stats, _, _ = run_layers(model, inputs)
    return layer_records(model, calls, keras.ops.convert_to_numpy(stats), None)


# model -> (traced forward probe, the layer calls its latest trace visited).
# Weak keys, and the traced function holds the model only weakly: the cache
# never keeps a model alive.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_forward(model: keras.Model) -> tuple[Any, list[LayerCall]]:
    entry = _COMPILED.get(model)
    if entry is None:
        import tensorflow as tf

        ref = weakref.ref(model)
        calls: list[LayerCall] = []

        def forward(inputs: list) -> Any:
            traced, stats, _, _ = run_layers(ref(), inputs, reducer=InlineReducer())
            calls[:] = traced  # runs at trace time only
            return stats

        entry = _COMPILED[model] = (tf.function(forward, autograph=False), calls)
    return entry


def probe_compiled(model: keras.Model, inputs: list) -> list[dict]:
    if keras.backend.backend() != "tensorflow":
        raise AutoInitError(f"probe(compiled=True) needs the TensorFlow backend. Received: {keras.backend.backend()!r}")
    function, calls = _compiled_forward(model)
    stats = function([keras.ops.convert_to_tensor(x) for x in inputs])
    return layer_records(model, calls, keras.ops.convert_to_numpy(stats), None)
