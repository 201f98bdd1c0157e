"""Rules for the normalization family (training mode: batch statistics)."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import keras
import numpy as np

from autoinit.errors import UnsupportedLayerWarning
from autoinit.estimators.covariance import rescaled_covariance
from autoinit.estimators.normalization import (
    BatchRenorm,
    estimate_batch_normalization,
    estimate_group_normalization,
    estimate_layer_normalization,
    estimate_unit_normalization,
    spectral_norm_estimate,
)
from autoinit.keras_adapter.context import LayerContext, normalized_axes, scaled, size_over_axes
from autoinit.keras_adapter.rules import rule, wrapped_rule
from autoinit.moments import SignalMoments


def _values(variable) -> np.ndarray | None:
    return None if variable is None else np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


@rule("BatchNormalization")
def batch_normalization(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    x = ctx.x
    if x.offsets is not None and normalized_axes(layer.axis, len(ctx.input_shape)) != [
        len(ctx.input_shape) - 1
    ]:
        x = SignalMoments(x.mean, x.var, x.shared_var)  # maps are channels-last
    renorm = None
    if getattr(layer, "renorm", False):
        clipping = layer.renorm_clipping or {}
        renorm = BatchRenorm(
            mean=_values(layer.renorm_mean),
            stddev=_values(layer.renorm_stddev),
            rmin=float(clipping.get("rmin") or 0.0),
            rmax=float(clipping["rmax"]) if clipping.get("rmax") is not None else math.inf,
            dmax=float(clipping["dmax"]) if clipping.get("dmax") is not None else math.inf,
        )
    y = estimate_batch_normalization(
        x,
        float(layer.epsilon),
        gamma=_values(layer.gamma) if layer.scale else None,
        beta=_values(layer.beta) if layer.center else None,
        renorm=renorm,
    )
    y = y.with_profile_of(x)  # per channel an affine map: the position profile stays
    if x.example_shared_var > 0.0:  # per channel an affine map: the per-example share stays
        y = y.with_example_fraction(x.example_fraction)
    y = y.with_scale_of(x)  # statistics over the batch: the same affine map for every example
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
    return y.with_example_fraction_of(ctx.x)


@rule("GroupNormalization")
def group_normalization(ctx: LayerContext) -> SignalMoments:
    layer, shape = ctx.layer, ctx.input_shape
    axis = layer.axis % len(shape)
    channels = shape[axis] or layer.groups
    positions = math.prod(d or 1 for i, d in enumerate(shape) if i not in (0, axis))
    return estimate_group_normalization(
        ctx.x, max(channels // layer.groups, 1), positions, float(layer.epsilon)
    )


@rule("UnitNormalization")
def unit_normalization(ctx: LayerContext) -> SignalMoments:
    shape = ctx.input_shape
    return estimate_unit_normalization(
        ctx.x, size_over_axes(shape, normalized_axes(ctx.layer.axis, len(shape)))
    )


@rule("SpectralNormalization")
def spectral_normalization(ctx: LayerContext) -> SignalMoments:
    """The wrapped layer's rule draws its kernel ``W``; the output is then
    computed for ``W / sigma`` (``estimators.normalization``), the kernel the
    layer uses in training. AutoInit cannot set this scale: the call records
    no target, and a warning names the layer."""
    wrapper = ctx.layer
    inner, inner_rule = wrapped_rule(ctx, "expected a Dense, convolution or Embedding layer")
    inner_ctx = LayerContext(
        call=replace(ctx.call, layer=inner),
        inputs=ctx.inputs,
        args=ctx.args,
        kwargs=ctx.kwargs,
        session=ctx.session,
        note=ctx.note,
    )
    y = inner_rule(inner_ctx)
    z = ctx.note.pre_activation if ctx.note.pre_activation is not None else y
    sigma = spectral_norm_estimate(
        _values(wrapper.kernel), _values(wrapper.vector_u), int(wrapper.power_iterations)
    )
    ctx.note.target = None
    warnings.warn(
        f"AutoInit cannot set the scale of layer '{wrapper.name}' (SpectralNormalization): it divides "
        f"the kernel of '{inner.name}' by its top singular value at call time (sigma = {sigma:.4g} for "
        "the drawn kernel), cancelling any initial scale; the estimates downstream use the normalized kernel.",
        UnsupportedLayerWarning,
        stacklevel=2,
    )
    if not (sigma > 0.0 and math.isfinite(sigma)):
        return y
    ctx.note.pre_activation = None
    return ctx.activate(scaled(z, 1.0 / (sigma * sigma)), getattr(inner, "activation", None))
