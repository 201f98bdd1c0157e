"""Rules for layers without weights that act per element or per channel:
activations, dropout/noise, normalization, pooling."""

from __future__ import annotations

from dataclasses import replace

import math

import keras
import numpy as np

from autoinit.estimators.activations import estimate_activation
from autoinit.estimators.convolutional import conv_output_length
from autoinit.estimators.covariance import linear_output, rescaled_covariance, spatial_dropout_covariance
from autoinit.estimators.normalization import (
    BatchRenorm,
    estimate_batch_normalization,
    estimate_group_normalization,
    estimate_layer_normalization,
    estimate_unit_normalization,
)
from autoinit.estimators.pooling import (
    estimate_average_pooling,
    estimate_average_pooling_map,
    estimate_max_pooling,
    estimate_max_pooling_map,
)
from autoinit.estimators.regularization import (
    estimate_alpha_dropout,
    estimate_dropout,
    estimate_gaussian_dropout,
    estimate_gaussian_noise,
)
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.keras_adapter.rules.weighted import spatial_dims
from autoinit.moments import SignalMoments


def _axes(axis, rank: int) -> list[int]:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return [a % rank for a in axes]


def _product(shape: tuple, axes: list[int]) -> int:
    return math.prod(shape[a] or 1 for a in axes)


# -- activations ---------------------------------------------------------------


@rule("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU")
def activation(ctx: LayerContext) -> SignalMoments:
    fn = ctx.layer.activation if type(ctx.layer).__name__ == "Activation" else ctx.layer
    return ctx.activate(ctx.x, fn)


@rule("Softmax")
def softmax(ctx: LayerContext) -> SignalMoments:
    size = _product(ctx.input_shape, _axes(ctx.layer.axis, len(ctx.input_shape)))
    return ctx.activate(ctx.x, "softmax", axis_size=size)


# -- regularization (training mode) -------------------------------------------


@rule("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D")
def dropout(ctx: LayerContext) -> SignalMoments:
    """Masks independent per element keep the covariance of two positions
    (mean-1 masks), so ``example_shared_var`` passes. A mask shared by the
    positions of one example's channel (spatial dropout, or a ``noise_shape``
    of 1 on every position axis) makes one: for ``y_t = m x_t``,
    ``E[m^2] = 1 / (1 - p)``, ``Cov(y_t, y_s) = (e + p d^2) / (1 - p)`` with
    ``d`` the channel's expected value, averaged to ``mean^2 + shared_var``."""
    x, rate = ctx.x, float(ctx.layer.rate)
    y = estimate_dropout(x, rate)
    if not 0.0 < rate < 1.0:
        return y
    example = x.example_shared_var
    shared_mask = _mask_shared_over_positions(ctx)
    if shared_mask:
        example = (example + rate * (x.mean * x.mean + x.shared_var)) / (1.0 - rate)
    y = replace(y, example_shared_var=example) if example > 0.0 else y
    if x.covariance is None:
        return y
    if shared_mask:
        return y.with_covariance(spatial_dropout_covariance(x.covariance, x.offsets, rate))
    return _independent_noise(x, y, ctx)


def _mask_shared_over_positions(ctx: LayerContext) -> bool:
    if type(ctx.layer).__name__.startswith("SpatialDropout"):
        return True
    noise = getattr(ctx.layer, "noise_shape", None)
    return noise is not None and len(noise) > 2 and all(d == 1 for d in noise[1:-1])


def _independent_noise(x: SignalMoments, y: SignalMoments, ctx: LayerContext) -> SignalMoments:
    """``y``, made from ``x`` by noise independent per element, with ``x``'s
    covariance between distinct elements (unchanged by such noise); a
    ``noise_shape`` that shares the noise between elements drops it."""
    if x.covariance is None or getattr(ctx.layer, "noise_shape", None) is not None:
        return y
    return y.with_covariance(x.covariance)


@rule("GaussianDropout")
def gaussian_dropout(ctx: LayerContext) -> SignalMoments:
    return _independent_noise(ctx.x, estimate_gaussian_dropout(ctx.x, float(ctx.layer.rate)), ctx)


@rule("GaussianNoise")
def gaussian_noise(ctx: LayerContext) -> SignalMoments:
    return _independent_noise(ctx.x, estimate_gaussian_noise(ctx.x, float(ctx.layer.stddev)), ctx)


@rule("AlphaDropout")
def alpha_dropout(ctx: LayerContext) -> SignalMoments:
    return estimate_alpha_dropout(ctx.x, float(ctx.layer.rate))


@rule("ActivityRegularization", "Masking")
def identity(ctx: LayerContext) -> SignalMoments:
    return ctx.x


# -- normalization (training mode) --------------------------------------------


def _values(variable) -> np.ndarray | None:
    return None if variable is None else np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


@rule("BatchNormalization")
def batch_normalization(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    x = ctx.x
    if x.offsets is not None and _axes(layer.axis, len(ctx.input_shape)) != [len(ctx.input_shape) - 1]:
        x = SignalMoments(x.mean, x.var, x.shared_var)  # maps are channels-last
    renorm = None
    if getattr(layer, "renorm", False):
        clipping = layer.renorm_clipping or {}
        renorm = BatchRenorm(
            mean=_values(layer.renorm_mean), stddev=_values(layer.renorm_stddev),
            rmin=float(clipping.get("rmin") or 0.0),
            rmax=float(clipping["rmax"]) if clipping.get("rmax") is not None else math.inf,
            dmax=float(clipping["dmax"]) if clipping.get("dmax") is not None else math.inf,
        )
    y = estimate_batch_normalization(
        x, float(layer.epsilon),
        gamma=_values(layer.gamma) if layer.scale else None,
        beta=_values(layer.beta) if layer.center else None,
        renorm=renorm,
    )
    if x.covariance is None or y.offsets is None or y.offsets.shape != x.offsets.shape:
        return y
    # Per channel an affine map: the covariance scales with the element variances.
    random_in = np.broadcast_to(x.random_map(), x.offsets.shape)
    random_out = np.broadcast_to(y.random_map(), y.offsets.shape)
    return y.with_covariance(rescaled_covariance(x.covariance, random_in, random_out))


@rule("LayerNormalization", "RMSNormalization")
def layer_normalization(ctx: LayerContext) -> SignalMoments:
    shape = ctx.input_shape
    features = _product(shape, _axes(ctx.layer.axis, len(shape)))
    y = estimate_layer_normalization(ctx.x, features, float(ctx.layer.epsilon))
    # Per-token rescaling: approximately keeps the per-example fraction.
    return y.with_example_fraction(ctx.x.example_fraction) if ctx.x.example_shared_var > 0.0 else y


@rule("GroupNormalization")
def group_normalization(ctx: LayerContext) -> SignalMoments:
    layer, shape = ctx.layer, ctx.input_shape
    axis = layer.axis % len(shape)
    channels = shape[axis] or layer.groups
    positions = math.prod(d or 1 for i, d in enumerate(shape) if i not in (0, axis))
    return estimate_group_normalization(ctx.x, max(channels // layer.groups, 1), positions, float(layer.epsilon))


@rule("UnitNormalization")
def unit_normalization(ctx: LayerContext) -> SignalMoments:
    shape = ctx.input_shape
    return estimate_unit_normalization(ctx.x, _product(shape, _axes(ctx.layer.axis, len(shape))))


# -- pooling -------------------------------------------------------------------


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
        _window_inverse_mean(n, p, s, layer.padding) for n, p, s in zip(spatial, layer.pool_size, layer.strides)
    )
    return estimate_average_pooling(ctx.x, 1.0 / inverse)


@rule("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")
def max_pooling(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    if getattr(layer, "data_format", None) != "channels_first" and ctx.x.offsets is not None:
        y = estimate_max_pooling_map(ctx.x, tuple(layer.pool_size), tuple(layer.strides), layer.padding)
        if y is not None:
            return y
    return estimate_max_pooling(ctx.x, math.prod(layer.pool_size))


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
    if x.covariance is not None and x.offsets.ndim > 1 and getattr(ctx.layer, "data_format", None) != "channels_first":
        channels = x.offsets.shape[-1]

        def mean_over_positions(batch: np.ndarray) -> np.ndarray:
            return batch.reshape(batch.shape[0], -1, channels).mean(axis=1)

        y = linear_output(x.offsets.reshape(-1, channels).mean(axis=0), x, mean_over_positions)
        if y is not None:
            return replace(y, example_shared_var=x.example_shared_var)
    if x.offsets is not None and x.offsets.ndim > 1:
        channels = x.offsets.shape[-1]
        channel = x.offsets.reshape(-1, channels).mean(axis=0)
        random = np.broadcast_to(x.random_map(), x.offsets.shape).reshape(-1, channels).mean(axis=0)
        x = replace(SignalMoments.from_offsets(channel, random), example_shared_var=ctx.x.example_shared_var)
    return estimate_average_pooling(x, _global_window(ctx))


@rule("GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")
def global_max_pooling(ctx: LayerContext) -> SignalMoments:
    return estimate_max_pooling(ctx.x, _global_window(ctx))


__all__ = ["activation", "estimate_activation"]
