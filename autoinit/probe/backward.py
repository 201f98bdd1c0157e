"""The backward pass: the gradient of ``L = sum(output * R)`` (``R`` fixed,
standard normal, one draw per example) with respect to each layer's output,
reduced to its moments inside the same graph as the forward pass.

TensorFlow only (the gradient tape is backend-specific).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from autoinit.probe.forward import PassLayout, forward_pass
from autoinit.probe.reducers import Reducer

__all__ = ["backward_pass", "projections"]


def backward_pass(
    model: keras.Model,
    inputs: list,
    projections: list,
    layout: PassLayout,
    tick: Any = None,
    calls: int = 0,
    trace_tick: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """``(rows, sizes, grad_rows, grad_sizes)`` of one micro-batch (as
    ``forward_pass``); gradient rows follow ``layout.grad_calls``. ``tick``
    and ``trace_tick`` report the forward half (fractions up to 1/2)."""
    import tensorflow as tf

    firsts: list[Any] = []  # per call: its first output as watched (the one reduced), or None
    seen = {id(x) for x in inputs}

    # Only the layer outputs are watched (not the weights): the gradient is
    # taken with respect to them alone, so no weight gradient is built.
    with tf.GradientTape(persistent=False, watch_accessed_variables=False) as tape:

        def hook(flat: list) -> list:
            watched = [_watch(tape, y, seen) for y in flat]
            firsts.append(watched[0] if watched and keras.backend.is_float_dtype(flat[0].dtype) else None)
            return watched

        rows, sizes, outputs = forward_pass(
            model, inputs, layout, hook, tick=_half(tick), calls=calls, trace_tick=_half(trace_tick)
        )
        loss = tf.add_n([tf.reduce_sum(tf.cast(y, "float32") * r) for y, r in zip(outputs, projections)])
    layout.grad_calls[:] = [i for i, tap in enumerate(firsts) if tap is not None]
    watched = [firsts[i] for i in layout.grad_calls]
    grads = (
        tape.gradient(loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO) if watched else []
    )
    reducer = Reducer()
    for grad in grads:
        reducer.add(grad)
    grad_rows, grad_sizes = reducer.result()
    return rows, sizes, grad_rows, grad_sizes


def _half(report: Any) -> Any:
    return None if report is None else (lambda fraction: report(0.5 * fraction))


def _watch(tape: Any, y: Any, seen: set[int]) -> Any:
    """``y``, watched by ``tape`` if it is a float. A tensor some earlier call
    or input already produced (a layer that returns its input) is watched
    through a new identity, so each call's gradient counts its own consumers."""
    import tensorflow as tf

    if not keras.backend.is_float_dtype(y.dtype):
        return y
    if id(y) in seen:
        y = tf.identity(y)
    seen.add(id(y))
    tape.watch(y)
    return y


def projections(seed: int, output_shapes: list[tuple], start: int, stop: int) -> list[np.ndarray]:
    """``R`` for examples ``start..stop`` of each model output: example ``e``'s
    draw depends on ``(seed, e)`` only, so any split into micro-batches sees
    the same ``R``."""
    parts = []
    for k, shape in enumerate(output_shapes):
        rows = [np.random.default_rng([seed, k, e]).standard_normal(shape) for e in range(start, stop)]
        parts.append(np.stack(rows).astype("float32"))
    return parts
