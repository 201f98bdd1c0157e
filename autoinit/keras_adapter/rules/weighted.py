"""Rules for layers with weights: Dense, EinsumDense, convolutions, Embedding."""

from __future__ import annotations

import functools
import math
import re

from autoinit.errors import EstimationError

from autoinit.estimators.convolutional import (
    average_taps,
    average_transpose_taps,
    estimate_conv_realised,
)
from autoinit.estimators.core import (
    dense_weight_variance,
    estimate_dense,
    estimate_dense_realised,
    estimate_embedding,
)
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def spatial_dims(shape: tuple, data_format: str | None, rank: int) -> tuple:
    if data_format == "channels_first":
        return tuple(shape[2 : 2 + rank])
    return tuple(shape[1 : 1 + rank])


def _finish(ctx: LayerContext, z: SignalMoments) -> SignalMoments:
    ctx.zero(getattr(ctx.layer, "bias", None))
    return ctx.activate(z, getattr(ctx.layer, "activation", None))


@rule("Dense")
def dense(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    z = ctx.dense_like(ctx.x, int(layer.kernel.shape[0]), layer.kernel, realised=estimate_dense_realised)
    return _finish(ctx, z)


def einsum_fan_in(equation: str, kernel_shape: tuple) -> int:
    """Product of the kernel dimensions the equation sums over."""
    match = re.match(r"^([\w.]+),([\w.]+)->([\w.]+)$", equation.replace(" ", ""))
    if not match:
        raise EstimationError(f"Expected an einsum equation 'in,kernel->out'. Received: {equation!r}")
    lhs, kernel, out = (s.replace("...", "") for s in match.groups())
    contracted = [i for i, letter in enumerate(kernel) if letter in lhs and letter not in out]
    return math.prod(int(kernel_shape[i]) for i in contracted) or 1


@rule("EinsumDense")
def einsum_dense(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    fan_in = einsum_fan_in(layer.equation, tuple(layer.kernel.shape))
    z = ctx.dense_like(ctx.x, fan_in, layer.kernel)
    return _finish(ctx, z)


def _conv_taps(ctx: LayerContext, kernel_size: tuple) -> float:
    layer = ctx.layer
    spatial = spatial_dims(ctx.input_shape, getattr(layer, "data_format", None), len(kernel_size))
    return average_taps(spatial, kernel_size, layer.strides, layer.padding, layer.dilation_rate)


@rule("Conv1D", "Conv2D", "Conv3D")
def conv(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    kernel = layer.kernel
    fan_in = _conv_taps(ctx, layer.kernel_size) * int(kernel.shape[-2])
    realised = None
    if getattr(layer, "groups", 1) == 1 and layer.data_format != "channels_first":
        realised = functools.partial(
            estimate_conv_realised,
            strides=layer.strides,
            padding=layer.padding,
            dilation=layer.dilation_rate,
        )
    return _finish(ctx, ctx.dense_like(ctx.x, fan_in, kernel, realised=realised))



@rule("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
def conv_transpose(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    kernel = layer.kernel  # (*kernel_size, filters, in_channels)
    spatial = spatial_dims(ctx.input_shape, layer.data_format, len(layer.kernel_size))
    taps = average_transpose_taps(spatial, layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate)
    return _finish(ctx, ctx.dense_like(ctx.x, taps * int(kernel.shape[-1]), kernel))


@rule("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise_conv(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    taps = _conv_taps(ctx, layer.kernel_size)
    z = ctx.dense_like(ctx.x, taps, layer.kernel, "depthwise_kernel", "depthwise_initializer")
    return _finish(ctx, z)


@rule("SeparableConv1D", "SeparableConv2D")
def separable_conv(ctx: LayerContext) -> SignalMoments:
    """Depthwise to unit second moment, then pointwise to the target."""
    layer = ctx.layer
    taps = _conv_taps(ctx, layer.kernel_size)
    middle = ctx.dense_like(ctx.x, taps, layer.depthwise_kernel, "depthwise_kernel", "depthwise_initializer", target=1.0)
    fan_in = int(layer.pointwise_kernel.shape[-2])
    z = ctx.dense_like(middle, fan_in, layer.pointwise_kernel, "pointwise_kernel", "pointwise_initializer")
    ctx.note.target = ctx.target
    return _finish(ctx, z)


@rule("Embedding")
def embedding(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    first = ctx.first_call("embeddings")
    variance = ctx.weight_variance("embeddings", ctx.target)
    if first:
        ctx.write(layer.embeddings, variance, "embeddings", "embeddings_initializer")
    ctx.note.target = ctx.target
    return estimate_embedding(variance)


__all__ = ["dense", "einsum_dense", "conv", "conv_transpose", "depthwise_conv", "separable_conv", "embedding", "einsum_fan_in", "dense_weight_variance", "estimate_dense"]
