"""Moments of a layer's output: reduced where the output is produced, merged
across micro-batches on the host.

In the pass, each tensor becomes two float32 scalars, its mean and the root
of its sum of squares (one reduction each, no temporary tensor: two graph
nodes per layer, which keeps a traced probe close to the model's own graph in
size, optimisation time and memory), and its element count, known from its
shape per example where that is static. On the host, in float64, the
variance is ``sum(x^2) / n - mean^2``: its relative error is about float32's
rounding of the sums times ``1 + mean^2 / var``, below 1e-3 unless a layer's
mean dwarfs its spread a thousandfold. The rows of successive micro-batches
then merge exactly with Chan et al.'s pairwise update (1979): for parts ``a``
and ``b`` with counts ``n_a, n_b``, means ``m_a, m_b`` and sums of squared
deviations ``M_a, M_b``, with ``d = m_b - m_a`` and ``n = n_a + n_b``:

    mean = m_a + d n_b / n,    M = M_a + M_b + d^2 n_a n_b / n,    var = M / n.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["Reducer", "MomentSums"]


class Reducer:
    """Collects ``[mean, root sum of squares]`` rows of the tensors of one pass.

    On TensorFlow each row costs two graph nodes (the reduction axes are
    shared); other backends use ``keras.ops``. Each row's element count is
    measured (``result``'s ``sizes``): the leading axis of a tensor inside a
    composite need not be the batch. ``moments`` turns rows and counts into
    ``[mean, var]``.
    """

    def __init__(self) -> None:
        self.tensorflow = keras.backend.backend() == "tensorflow"
        self.means: list[Any] = []
        self.norms: list[Any] = []
        self.sizes: list[Any] = []
        self._axes: dict[int, Any] = {}
        self._reductions: dict[int, tuple[Any, Any]] = {}

    def add(self, tensor: Any) -> int:
        """Reduce ``tensor``; returns its row."""
        self.sizes.append(keras.ops.size(tensor))
        if self.tensorflow:
            mean, norm = self._tensorflow_sums(tensor)
        else:
            x = keras.ops.cast(tensor, "float32")
            mean, norm = keras.ops.mean(x), keras.ops.sqrt(keras.ops.sum(keras.ops.square(x)))
        self.means.append(mean)
        self.norms.append(norm)
        self._reductions[id(tensor)] = (mean, norm)
        return len(self.means) - 1

    def reductions_of(self, tensors: list) -> list[Any]:
        """The reduction results of those of ``tensors`` this reducer reduced."""
        return [r for t in tensors for r in self._reductions.get(id(t), ())]

    def _tensorflow_sums(self, tensor: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        x = tensor if tensor.dtype == tf.float32 else tf.cast(tensor, tf.float32)
        rank = len(x.shape)
        axes = self._axes.get(rank)
        if axes is None:
            axes = self._axes[rank] = tf.constant(list(range(rank)), tf.int32)
        return tf.raw_ops.Mean(input=x, axis=axes), tf.raw_ops.EuclideanNorm(input=x, axis=axes)

    def result(self) -> tuple[Any, Any]:
        """``([n, 2] [mean, root sum of squares] rows, [n] element counts)``."""
        if not self.means:
            return keras.ops.zeros((0, 2), "float32"), keras.ops.zeros((0,), "int32")
        rows = keras.ops.stack([keras.ops.stack(self.means), keras.ops.stack(self.norms)], axis=1)
        return rows, keras.ops.cast(keras.ops.stack(self.sizes), "int32")

    @staticmethod
    def counts(sizes: Any) -> np.ndarray:
        """Every row's element count (``result``'s ``sizes``), as float64."""
        return np.asarray(sizes, dtype=np.float64).reshape(-1)

    @staticmethod
    def moments(rows: Any, counts: np.ndarray) -> np.ndarray:
        """``[n, 2]`` ``[mean, var]`` (float64) from ``result``'s rows and ``counts``."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        mean, norm = rows[:, 0], rows[:, 1]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            second = norm * norm / np.where(counts > 0, counts, np.nan)
            var = np.maximum(second - mean * mean, 0.0)
            var = np.where(np.isfinite(second), var, second)  # an overflowed sum stays inf (reported as null)
        return np.stack([mean, var], axis=1)


class MomentSums:
    """Running ``(count, mean, sum of squared deviations)`` per row, in float64."""

    def __init__(self) -> None:
        self.count: np.ndarray | None = None
        self.mean: np.ndarray | None = None
        self.squares: np.ndarray | None = None

    def add(self, counts: Any, moments: Any) -> None:
        """Merge one micro-batch's ``[n]`` counts and ``[n, 2]`` ``[mean, var]`` rows."""
        n_b = np.asarray(counts, dtype=np.float64)
        moments = np.asarray(moments, dtype=np.float64).reshape(-1, 2)
        m_b, squares_b = moments[:, 0], moments[:, 1] * n_b
        if self.count is None:
            self.count, self.mean, self.squares = n_b, m_b, squares_b
            return
        n_a, m_a = self.count, self.mean
        n = n_a + n_b
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            share = np.where(n > 0, n_b / np.where(n > 0, n, 1.0), 0.0)
            delta = m_b - m_a
            self.mean = m_a + delta * share
            self.squares = self.squares + squares_b + delta * delta * n_a * share
        self.count = n

    def moments(self) -> np.ndarray:
        """``[n, 2]`` merged ``[mean, var]`` rows (population variance)."""
        if self.count is None:
            return np.zeros((0, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(self.count > 0, self.squares / np.where(self.count > 0, self.count, 1.0), np.nan)
        return np.stack([self.mean, var], axis=1)
