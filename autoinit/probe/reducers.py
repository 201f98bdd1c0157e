"""Reduce a layer's output to its ``[mean, var]`` where it is produced."""

from __future__ import annotations

import functools
from typing import Any

import keras

__all__ = ["reducer", "InlineReducer", "BatchedReducer"]


def _two_pass_moments(tensor: Any) -> Any:
    """``[mean, var]`` of all elements of ``tensor`` (float32, two passes)."""
    x = keras.ops.cast(tensor, "float32")
    mean = keras.ops.mean(x)
    return keras.ops.stack([mean, keras.ops.mean(keras.ops.square(x - mean))])


class InlineReducer:
    """Reduces each layer output where it is produced: inside a traced graph
    (where the ops fuse into the graph), or on backends other than TensorFlow."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def add(self, tensor: Any) -> None:
        self.rows.append(_two_pass_moments(tensor))

    def result(self) -> Any:
        return keras.ops.stack(self.rows)


# Layer outputs reduced per compiled call. One call per output costs about as
# much dispatch as the layer itself; 32 per call run side by side in one
# graph. The traced function (0.3 s) is built on first use, once per process.
_BATCH = 32


@functools.lru_cache(maxsize=1)
def _batched_moments() -> tuple[Any, Any]:
    """A concrete TensorFlow function ``(x_1, ..., x_32) -> [[mean, var]] * 32``
    (any shapes, float32) and the tiny tensor that pads unused slots."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * _BATCH, autograph=False)
    def moments(*xs: Any) -> Any:
        rows = []
        for x in xs:
            mean = tf.reduce_mean(x)
            rows.append(tf.stack([mean, tf.reduce_mean(tf.math.squared_difference(x, mean))]))
        return tf.stack(rows)

    return moments.get_concrete_function(), tf.zeros([1])  # a concrete function skips argument binding


class BatchedReducer:
    """Eager probes: collects layer outputs and reduces them ``_BATCH`` at a
    time. The interpreter keeps every output alive until the pass ends anyway,
    so holding a few more costs no memory."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.rows: list[Any] = []

    def add(self, tensor: Any) -> None:
        if keras.backend.standardize_dtype(tensor.dtype) != "float32":
            tensor = keras.ops.cast(tensor, "float32")
        self.pending.append(tensor)
        if len(self.pending) == _BATCH:
            self._flush()

    def _flush(self) -> None:
        moments, pad = _batched_moments()
        n = len(self.pending)
        self.rows.append(moments(*self.pending, *[pad] * (_BATCH - n))[:n])
        self.pending = []

    def result(self) -> Any:
        if self.pending:
            self._flush()
        return keras.ops.concatenate(self.rows, axis=0)


def reducer() -> InlineReducer | BatchedReducer:
    return BatchedReducer() if keras.backend.backend() == "tensorflow" else InlineReducer()
