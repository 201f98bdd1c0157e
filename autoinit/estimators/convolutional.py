"""Convolutions: the dense mapping with an effective fan-in.

A convolution is a dense layer with sparse connectivity (paper, Appendix A):
``nu_out = fan_in Var(W) (nu_in + mu_in^2)`` where ``fan_in`` counts the inputs
one output sums over. At the borders of a ``"same"``-padded input some kernel
taps fall on padding and contribute nothing, so we use the exact average
number of in-bounds taps over all output positions (it matters on small
feature maps: a 3x3 kernel on 4x4 inputs averages 6.25 taps, not 9). For
transposed convolutions each output receives about ``kernel / stride`` taps;
again the exact average is counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "conv_output_length",
    "average_taps_1d",
    "average_taps",
    "average_transpose_taps",
]


def conv_output_length(length: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a convolution (Keras semantics)."""
    span = (kernel - 1) * dilation + 1
    if padding == "same":
        return -(-length // stride)
    if padding == "causal":
        return -(-length // stride)
    return max((length - span) // stride + 1, 0)


def average_taps_1d(length: int | None, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1) -> float:
    """Mean number of kernel taps that land inside the input, over outputs.

    ``length=None`` (unknown) assumes no border effect (``kernel`` taps).
    """
    if length is None or padding == "valid":
        return float(kernel)
    out_len = conv_output_length(length, kernel, stride, padding, dilation)
    if out_len == 0:
        return float(kernel)
    span = (kernel - 1) * dilation + 1
    if padding == "causal":
        pad_before = span - 1
    else:  # "same": TF pads the total deficit, the smaller half first
        total = max((out_len - 1) * stride + span - length, 0)
        pad_before = total // 2
    starts = np.arange(out_len) * stride - pad_before
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    inside = (taps >= 0) & (taps < length)
    return float(inside.sum(axis=1).mean())


def average_taps(
    spatial: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> float:
    """Product over spatial axes of ``average_taps_1d`` (axes are independent)."""
    return math.prod(
        average_taps_1d(n, k, s, padding, d)
        for n, k, s, d in zip(spatial, kernel, strides, dilation)
    )


def average_transpose_taps_1d(length: int | None, kernel: int, stride: int, padding: str, dilation: int = 1) -> float:
    """Mean number of (input, tap) pairs that write each output of a transposed conv."""
    if length is None:
        return kernel / stride
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        out_len = length * stride + max(span - stride, 0)
        pad_before = 0
    else:  # "same"
        out_len = length * stride
        total = max(span - stride, 0)
        pad_before = total // 2
    counts = np.zeros(out_len + span + stride)
    for i in range(length):
        for k in range(kernel):
            pos = i * stride + k * dilation - pad_before
            if 0 <= pos < out_len:
                counts[pos] += 1
    return float(counts[:out_len].mean()) if out_len else kernel / stride


def average_transpose_taps(
    spatial: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> float:
    return math.prod(
        average_transpose_taps_1d(n, k, s, padding, d)
        for n, k, s, d in zip(spatial, kernel, strides, dilation)
    )
