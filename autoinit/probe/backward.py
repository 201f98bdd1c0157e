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
) -> tuple[Any, Any, Any, Any]:
    """``(rows, sizes, grad_rows, grad_sizes)`` of one micro-batch (as
    ``forward_pass``); gradient rows follow ``layout.grad_calls``. ``tick``
    reports the forward half (fractions up to 1/2)."""
    import tensorflow as tf

    firsts: list[Any] = []  # per call: the tap on its first output (the one reduced), or None

    with tf.GradientTape(persistent=False) as tape:

        def hook(flat: list) -> list:
            tapped = []
            for y in flat:
                if keras.backend.is_float_dtype(y.dtype):
                    zero = tf.zeros_like(y)
                    tape.watch(zero)
                    tapped.append((y + zero, zero))
                else:
                    tapped.append((y, None))
            firsts.append(tapped[0][1] if tapped else None)
            return [y for y, _ in tapped]

        half = None if tick is None else (lambda fraction: tick(0.5 * fraction))
        rows, sizes, outputs = forward_pass(model, inputs, layout, hook, tick=half, calls=calls)
        loss = tf.add_n([tf.reduce_sum(tf.cast(y, "float32") * r) for y, r in zip(outputs, projections)])
    layout.grad_calls[:] = [i for i, tap in enumerate(firsts) if tap is not None]
    watched = [firsts[i] for i in layout.grad_calls]
    grads = (
        tape.gradient(loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO) if watched else []
    )
    reducer = Reducer()
    for grad in grads:
        reducer.add(grad)
    layout.grad_elements[:] = reducer.elements
    grad_rows, grad_sizes = reducer.result()
    return rows, sizes, grad_rows, grad_sizes


def projections(seed: int, output_shapes: list[tuple], start: int, stop: int) -> list[np.ndarray]:
    """``R`` for examples ``start..stop`` of each model output: example ``e``'s
    draw depends on ``(seed, e)`` only, so any split into micro-batches sees
    the same ``R``."""
    parts = []
    for k, shape in enumerate(output_shapes):
        rows = [np.random.default_rng([seed, k, e]).standard_normal(shape) for e in range(start, stop)]
        parts.append(np.stack(rows).astype("float32"))
    return parts
