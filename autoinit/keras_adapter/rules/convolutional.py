"""Rules for the convolutional family: Conv, ConvTranspose, DepthwiseConv,
SeparableConv."""

from __future__ import annotations

import functools

from autoinit.estimators.convolutional import (
    average_taps,
    average_transpose_taps,
    depthwise_as_grouped,
    estimate_conv_realised,
    estimate_conv_transpose_realised,
)
from autoinit.keras_adapter.context import LayerContext, spatial_dims
from autoinit.keras_adapter.rules import rule
from autoinit.keras_adapter.rules.core import finish_weighted
from autoinit.moments import SignalMoments


def _conv_taps(ctx: LayerContext, kernel_size: tuple) -> float:
    layer = ctx.layer
    spatial = spatial_dims(ctx.input_shape, getattr(layer, "data_format", None), len(kernel_size))
    return average_taps(spatial, kernel_size, layer.strides, layer.padding, layer.dilation_rate)


def conv_realised(layer, groups: int = 1, depthwise: bool = False):
    """The realised-moments function of a channels-last convolution, else None."""
    if getattr(layer, "data_format", None) == "channels_first":
        return None

    def realised(kernel, x, offsets):
        w = depthwise_as_grouped(kernel) if depthwise else kernel
        return estimate_conv_realised(
            w,
            x,
            offsets,
            strides=layer.strides,
            padding=layer.padding,
            dilation=layer.dilation_rate,
            groups=offsets.shape[-1] if depthwise else groups,
        )

    return realised


@rule("Conv1D", "Conv2D", "Conv3D", kernels=[("kernel", "kernel")])
def conv(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    kernel = layer.kernel
    groups = int(getattr(layer, "groups", 1) or 1)
    fan_in = _conv_taps(ctx, layer.kernel_size) * int(kernel.shape[-2])
    z = ctx.dense_like(
        ctx.x,
        fan_in,
        kernel,
        realised=conv_realised(layer, groups),
        in_channels=int(kernel.shape[-2]) * groups,
    )
    return finish_weighted(ctx, z)


@rule("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", kernels=[("kernel", "kernel")])
def conv_transpose(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    kernel = layer.kernel  # (*kernel_size, filters, in_channels)
    spatial = spatial_dims(ctx.input_shape, layer.data_format, len(layer.kernel_size))
    taps = average_transpose_taps(
        spatial, layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate
    )
    realised = None
    if layer.data_format != "channels_first" and layer.output_padding is None and None not in spatial:
        realised = functools.partial(
            estimate_conv_transpose_realised,
            strides=layer.strides,
            padding=layer.padding,
            dilation=layer.dilation_rate,
        )
    z = ctx.dense_like(
        ctx.x, taps * int(kernel.shape[-1]), kernel, realised=realised, in_channels=int(kernel.shape[-1])
    )
    return finish_weighted(ctx, z)


def _depthwise_kernel(layer):
    return layer.kernel if hasattr(layer, "kernel") else layer.depthwise_kernel


@rule("DepthwiseConv1D", "DepthwiseConv2D", kernels=[("depthwise_kernel", "kernel")])
def depthwise_conv(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    taps = _conv_taps(ctx, layer.kernel_size)
    z = ctx.dense_like(
        ctx.x,
        taps,
        _depthwise_kernel(layer),
        "depthwise_kernel",
        "depthwise_initializer",
        realised=conv_realised(layer, depthwise=True),
    )
    return finish_weighted(ctx, z)


@rule(
    "SeparableConv1D",
    "SeparableConv2D",
    kernels=[("depthwise_kernel", "depthwise_kernel"), ("pointwise_kernel", "pointwise_kernel")],
)
def separable_conv(ctx: LayerContext) -> SignalMoments:
    """Depthwise to unit second moment, then pointwise to the target."""
    layer = ctx.layer
    taps = _conv_taps(ctx, layer.kernel_size)
    depthwise = layer.depthwise_kernel
    middle = ctx.dense_like(
        ctx.x,
        taps,
        depthwise,
        "depthwise_kernel",
        "depthwise_initializer",
        target=1.0,
        realised=conv_realised(layer, depthwise=True),
    )
    pointwise = layer.pointwise_kernel
    fan_in = int(pointwise.shape[-2])
    pointwise_realised = None
    if layer.data_format != "channels_first":
        pointwise_realised = functools.partial(
            estimate_conv_realised,
            strides=(1,) * len(layer.kernel_size),
            padding="valid",
            dilation=(1,) * len(layer.kernel_size),
        )
    middle_shape = (*ctx.output_shape[1:-1], fan_in)
    z = ctx.dense_like(
        middle,
        fan_in,
        pointwise,
        "pointwise_kernel",
        "pointwise_initializer",
        realised=pointwise_realised,
        shape=middle_shape,
    )
    ctx.aim(ctx.target, overwrite=True)
    return finish_weighted(ctx, z)
