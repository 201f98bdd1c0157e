"""Rules for the preprocessing family, as the layers act in training mode
(where the probe runs and where a model trains); the assumptions are in
``autoinit.estimators.preprocessing``."""

from __future__ import annotations

import math

import keras
import numpy as np

from autoinit.estimators.preprocessing import (
    RANDOM_OFFSET_BILINEAR_FACTOR,
    estimate_affine,
    estimate_clipped_random_affine,
    estimate_normalization,
    estimate_resampling,
    resize_variance_factor,
)
from autoinit.keras_adapter.context import LayerContext, spatial_dims
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def _example_shape(ctx: LayerContext) -> tuple:
    return tuple(ctx.input_shape[1:])


@rule("Rescaling")
def rescaling(ctx: LayerContext) -> SignalMoments:
    """``y = scale x + offset``; a per-channel ``scale`` or ``offset`` (a list)
    broadcasts over the last axis, as Keras does."""
    layer = ctx.layer
    return estimate_affine(
        ctx.x, np.asarray(layer.scale, np.float64), np.asarray(layer.offset, np.float64), _example_shape(ctx)
    )


@rule("Normalization")
def normalization(ctx: LayerContext) -> SignalMoments:
    """``(x - mean) / sqrt(variance)`` with the statistics given in the config
    or adapted (the same in training mode: no batch statistics)."""
    layer = ctx.layer
    mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), np.float64)
    variance = np.asarray(keras.ops.convert_to_numpy(layer.variance), np.float64)
    return estimate_normalization(
        ctx.x, mean, variance, _example_shape(ctx), invert=bool(layer.invert), epsilon=keras.backend.epsilon()
    )


@rule("RandomFlip", "RandomCrop", "CenterCrop")
def moved_pixels(ctx: LayerContext) -> SignalMoments:
    """Moves pixels (which ones depends on the draw): one value per channel.
    A crop larger than its input resizes instead (bilinear)."""
    factor = _resize_factor(ctx, "bilinear")
    return estimate_resampling(ctx.x, factor) if factor != 1.0 else ctx.x.per_channel()


@rule("Resizing")
def resizing(ctx: LayerContext) -> SignalMoments:
    """Bilinear (and the other smooth kernels, approximated as bilinear):
    the white part of the variance shrinks by ``resize_variance_factor`` per
    axis; ``nearest`` copies pixels."""
    return estimate_resampling(ctx.x, _resize_factor(ctx, ctx.layer.interpolation))


def _resize_factor(ctx: LayerContext, interpolation: str) -> float:
    if interpolation == "nearest":
        return 1.0
    data_format = getattr(ctx.layer, "data_format", None)
    before = spatial_dims(ctx.input_shape, data_format, 2)
    after = spatial_dims(ctx.output_shape, data_format, 2)
    if type(ctx.layer).__name__ != "Resizing" and all(
        a is not None and b is not None and a <= b for a, b in zip(after, before)
    ):
        return 1.0  # a crop inside the image
    return math.prod(
        resize_variance_factor(b, a) if a is not None and b is not None else 1.0
        for b, a in zip(before, after)
    )


def _moves(lower: float, upper: float) -> bool:
    return not (lower == 0.0 and upper == 0.0)


@rule("RandomRotation", "RandomZoom", "RandomTranslation")
def random_geometric(ctx: LayerContext) -> SignalMoments:
    """Resamples at random sub-pixel positions: ``2/3`` of the white variance
    kept per interpolated axis (bilinear), none lost with ``nearest``."""
    layer = ctx.layer
    if layer.interpolation == "nearest":
        return ctx.x.per_channel()
    kind = type(layer).__name__
    if kind == "RandomRotation":
        axes = 2 if _moves(*layer.factor) else 0
    else:
        height = _moves(layer.height_lower, layer.height_upper)
        width = _moves(getattr(layer, "width_lower", 0.0) or 0.0, getattr(layer, "width_upper", 0.0) or 0.0)
        if kind == "RandomZoom" and getattr(layer, "width_factor", None) is None:
            width = height  # zooms both axes by the height factor
        axes = int(height) + int(width)
    return estimate_resampling(ctx.x, RANDOM_OFFSET_BILINEAR_FACTOR**axes)


@rule("RandomBrightness")
def random_brightness(ctx: LayerContext) -> SignalMoments:
    """``clip(x + delta, *value_range)``, ``delta`` uniform per image on
    ``factor * (high - low)``."""
    layer = ctx.layer
    low, high = (float(v) for v in layer.value_range)
    shift = tuple(float(f) * (high - low) for f in layer.factor)
    return estimate_clipped_random_affine(ctx.x, (1.0, 1.0), shift, (low, high))


@rule("RandomContrast")
def random_contrast(ctx: LayerContext) -> SignalMoments:
    """``clip(c (x - m) + m, *value_range)``, ``c`` uniform per image on
    ``[1 - factor[0], 1 + factor[1]]`` (Keras' reading of ``factor``)."""
    layer = ctx.layer
    low, high = (float(v) for v in layer.value_range)
    scale = (1.0 - float(layer.factor[0]), 1.0 + float(layer.factor[1]))
    return estimate_clipped_random_affine(ctx.x, scale, (0.0, 0.0), (low, high), around_mean=True)
