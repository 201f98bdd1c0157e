"""Rules for the pooling family (average, max, global)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from autoinit.estimators.convolutional import conv_output_length, convolve_map
from autoinit.estimators.covariance import linear_output
from autoinit.estimators.pooling import (
    estimate_average_pooling,
    estimate_average_pooling_map,
    estimate_max_pooling,
    estimate_max_pooling_map,
    estimate_max_pooling_per_channel,
)
from autoinit.keras_adapter.context import LayerContext, spatial_dims
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def _window_inverse_mean(length: int | None, pool: int, stride: int, padding: str) -> float:
    """Mean over outputs of 1 / (elements inside the window)."""
    if length is None or padding != "same":
        return 1.0 / pool
    out_len = conv_output_length(length, pool, stride, padding)
    total = max((out_len - 1) * stride + pool - length, 0)
    starts = np.arange(out_len) * stride - total // 2
    inside = np.clip(np.minimum(starts + pool, length) - np.maximum(starts, 0), 1, None)
    return float(np.mean(1.0 / inside))


@rule("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
def average_pooling(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    if layer.data_format != "channels_first" and ctx.x.offsets is not None:
        y = estimate_average_pooling_map(ctx.x, tuple(layer.pool_size), tuple(layer.strides), layer.padding)
        if y is not None:
            return y
    spatial = spatial_dims(ctx.input_shape, layer.data_format, len(layer.pool_size))
    inverse = math.prod(
        _window_inverse_mean(n, p, s, layer.padding)
        for n, p, s in zip(spatial, layer.pool_size, layer.strides)
    )
    return estimate_average_pooling(ctx.x, 1.0 / inverse)


@rule("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")
def max_pooling(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    if getattr(layer, "data_format", None) != "channels_first" and ctx.x.offsets is not None:
        y = estimate_max_pooling_map(ctx.x, tuple(layer.pool_size), tuple(layer.strides), layer.padding)
        if y is not None:
            return y
    if getattr(layer, "data_format", None) != "channels_first":
        y = estimate_max_pooling_per_channel(ctx.x, math.prod(layer.pool_size))
        if y is not None:
            return _pooled_profile(ctx, y)
    return estimate_max_pooling(ctx.x, math.prod(layer.pool_size))


def _pooled_profile(ctx: LayerContext, y: SignalMoments) -> SignalMoments:
    """``y`` (per channel) with its input's position profile averaged over
    each pooling window (``SignalMoments.profile``)."""
    x, layer = ctx.x, ctx.layer
    if x.profile is None or y.offsets is None or y.offsets.ndim != 1:
        return y
    pool, strides = tuple(layer.pool_size), tuple(layer.strides)
    kernel = np.ones((*pool, 1, 1)) / math.prod(pool)
    pooled = convolve_map(
        np.asarray(x.profile, np.float64)[..., None], kernel, strides, layer.padding, (1,) * len(pool)
    )[..., 0]
    if tuple(pooled.shape) != tuple(d for d in ctx.output_shape[1:-1]) or pooled.mean() <= 0:
        return y
    return replace(y, profile=pooled / pooled.mean())


def _global_window(ctx: LayerContext) -> int:
    shape = ctx.input_shape
    rank = len(shape) - 2
    spatial = spatial_dims(shape, getattr(ctx.layer, "data_format", None), rank)
    return math.prod(d or 1 for d in spatial)


@rule("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")
def global_average_pooling(ctx: LayerContext) -> SignalMoments:
    """Position-dependent expected values (``offsets`` map) average exactly
    to their channel means; only the random part shrinks with the window."""
    x = ctx.x
    if (
        x.covariance is not None
        and x.offsets.ndim > 1
        and getattr(ctx.layer, "data_format", None) != "channels_first"
    ):
        channels = x.offsets.shape[-1]

        def mean_over_positions(batch: np.ndarray) -> np.ndarray:
            return batch.reshape(batch.shape[0], -1, channels).mean(axis=1)

        y = linear_output(x.offsets.reshape(-1, channels).mean(axis=0), x, mean_over_positions)
        if y is not None:
            return _pooled_scale(replace(y, example_shared_var=x.example_shared_var), x)
    if x.offsets is not None and x.offsets.ndim > 1:
        channels = x.offsets.shape[-1]
        channel = x.offsets.reshape(-1, channels).mean(axis=0)
        random = np.broadcast_to(x.random_map(), x.offsets.shape).reshape(-1, channels).mean(axis=0)
        x = replace(SignalMoments.from_offsets(channel, random), example_shared_var=ctx.x.example_shared_var)
    return _pooled_scale(estimate_average_pooling(x, _global_window(ctx)), ctx.x)


def _pooled_scale(y: SignalMoments, x: SignalMoments) -> SignalMoments:
    """The pooled ``y`` of ``x``: the scale-driven part of ``x`` (constant over
    an example's positions) passes whole; no positions are left to scale."""
    if x.scale_driven_var <= 0.0:
        return y
    return replace(y, scale_var=0.0, scale_driven_var=x.scale_driven_var)


@rule("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
def global_max_pooling(ctx: LayerContext) -> SignalMoments:
    return estimate_max_pooling(ctx.x, _global_window(ctx))
