"""The backward probe: the variance of the gradient of a random projection
loss with respect to each layer's output."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from autoinit.probe.forward import layer_records, run_layers

__all__ = ["probe_backward"]


def probe_backward(model: keras.Model, inputs: list, seed: int) -> list[dict]:
    import tensorflow as tf  # the gradient tape is backend-specific

    zeros: list[Any] = []

    def hook(y: Any) -> Any:
        if not keras.backend.is_float_dtype(y.dtype):
            zeros.append(None)
            return y
        zero = tf.zeros_like(y)
        tape.watch(zero)
        zeros.append(zero)
        return y + zero

    with tf.GradientTape(persistent=False) as tape:
        calls, stats, _, outputs = run_layers(model, inputs, hook)
        rng = np.random.default_rng(seed + 1)
        loss = tf.add_n(
            [tf.reduce_sum(tf.cast(y, "float32") * rng.standard_normal(tuple(y.shape)).astype("float32")) for y in outputs]
        )
    watched = [z for z in zeros if z is not None]
    grads = tape.gradient(loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    variances = iter(keras.ops.convert_to_numpy(tf.stack([tf.math.reduce_variance(g) for g in grads])) if grads else [])
    grad_vars: list[float | None] = [None] * len(inputs)  # no gradient taken for the inputs
    grad_vars += [None if z is None else float(next(variances)) for z in zeros]
    return layer_records(model, calls, keras.ops.convert_to_numpy(stats), grad_vars)
