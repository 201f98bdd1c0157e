"""Rules for the normalization family (training mode: batch statistics)."""

from __future__ import annotations

import math

import keras
import numpy as np

from autoinit.estimators.covariance import rescaled_covariance
from autoinit.estimators.normalization import (
    BatchRenorm,
    estimate_batch_normalization,
    estimate_group_normalization,
    estimate_layer_normalization,
    estimate_unit_normalization,
)
from autoinit.keras_adapter.context import LayerContext, normalized_axes, size_over_axes
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def _values(variable) -> np.ndarray | None:
    return None if variable is None else np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


@rule("BatchNormalization")
def batch_normalization(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    x = ctx.x
    if x.offsets is not None and normalized_axes(layer.axis, len(ctx.input_shape)) != [len(ctx.input_shape) - 1]:
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
    features = size_over_axes(shape, normalized_axes(ctx.layer.axis, len(shape)))
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
    return estimate_unit_normalization(ctx.x, size_over_axes(shape, normalized_axes(ctx.layer.axis, len(shape))))
