"""Rules for the reshaping family: layers that move, copy, pad or crop elements."""

from __future__ import annotations

import numpy as np

from autoinit.estimators.covariance import batched, linear_covariance
from autoinit.estimators.reshaping import estimate_zero_padding, padded_fraction
from autoinit.keras_adapter.context import LayerContext, element_count, without_offsets
from autoinit.keras_adapter.rules import rule
from autoinit.moments import COVARIANCE_ELEMENTS, SignalMoments

SHAPE_LAYERS = ("Flatten", "Reshape", "Permute", "RepeatVector")
# Layers that may move elements between channels of the last axis.
CHANNEL_MIXING = frozenset({"Flatten", "Reshape", "Permute"})


@rule(*SHAPE_LAYERS)
def shape_only(ctx: LayerContext) -> SignalMoments:
    """Paper: shape layers leave the distribution unchanged. (Keeps ``origin``;
    forgets per-channel offsets where the channel axis may change.)"""
    if type(ctx.layer).__name__ in CHANNEL_MIXING:
        moved = _reshaped_map(ctx)
        return moved.with_scale_of(ctx.x) if moved is not None else without_offsets(ctx.x)
    return ctx.x


def _reshaped_map(ctx: LayerContext) -> SignalMoments | None:
    """Flatten/Reshape move elements without changing them: a full map of
    expected values (one example, C order like Keras' channels-last tensors)
    is reshaped with them."""
    x, in_shape, out_shape = ctx.x, tuple(ctx.input_shape[1:]), tuple(ctx.output_shape[1:])
    if type(ctx.layer).__name__ == "Permute" or x.offsets is None or x.offsets.shape != in_shape:
        return None
    if (
        not out_shape
        or any(d is None for d in out_shape)
        or getattr(ctx.layer, "data_format", None) == "channels_first"
    ):
        return None
    random = np.broadcast_to(x.random_map(), x.offsets.shape).reshape(out_shape)
    out = SignalMoments.from_offsets(x.offsets.reshape(out_shape), random, x.origin)
    return out.with_covariance(x.covariance) if x.covariance is not None else out  # same C order


def _spatial_map(ctx: LayerContext) -> SignalMoments | None:
    """The input when it carries a full channels-last map of expected values."""
    x = ctx.x
    rank = len(ctx.input_shape) - 2
    if (
        x.offsets is None
        or x.offsets.ndim != rank + 1
        or getattr(ctx.layer, "data_format", None) == "channels_first"
    ):
        return None
    return x


def _pairs(value, rank: int) -> list[tuple[int, int]]:
    """Keras' padding/cropping argument as one ``(before, after)`` per spatial axis."""
    if isinstance(value, int):
        return [(value, value)] * rank
    items = list(value)
    if rank == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
        return [(int(items[0]), int(items[1]))]
    return [(v, v) if isinstance(v, int) else (int(v[0]), int(v[1])) for v in items]


def _with_maps(x: SignalMoments, transform) -> SignalMoments:
    """Apply the same element move to the expected values and the variances
    (and to both sides of the covariance: ``T C T^T``)."""
    random = np.broadcast_to(x.random_map(), x.offsets.shape)
    out = SignalMoments.from_offsets(
        transform(np.asarray(x.offsets, np.float64)), transform(np.asarray(random, np.float64))
    )
    if x.covariance is None or out.offsets.size > COVARIANCE_ELEMENTS:
        return out
    return out.with_covariance(linear_covariance(batched(transform), x.covariance, x.offsets.shape))


@rule("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def zero_padding(ctx: LayerContext) -> SignalMoments:
    """With a map of expected values the padded zeros are placed exactly
    (a later Cropping then removes exactly them)."""
    x = _spatial_map(ctx)
    if x is not None:
        pads = _pairs(ctx.layer.padding, x.offsets.ndim - 1) + [(0, 0)]
        return _with_maps(x, lambda a: np.pad(a, pads)).with_scale_of(x)
    fraction = padded_fraction(element_count(ctx.input_shape), element_count(ctx.output_shape))
    return estimate_zero_padding(ctx.x, fraction).with_scale_of(ctx.x)


@rule("Cropping1D", "Cropping2D", "Cropping3D")
def cropping(ctx: LayerContext) -> SignalMoments:
    """Moves elements; with a map of expected values, the map is cropped."""
    x = _spatial_map(ctx)
    if x is None:
        return ctx.x
    crops = _pairs(ctx.layer.cropping, x.offsets.ndim - 1)
    window = tuple(slice(b, n - a) for (b, a), n in zip(crops, x.offsets.shape)) + (slice(None),)
    return _with_maps(x, lambda a: a[window])


@rule("UpSampling1D", "UpSampling2D", "UpSampling3D")
def up_sampling(ctx: LayerContext) -> SignalMoments:
    """Copies elements; with a map of expected values and nearest-neighbour
    interpolation, the map is repeated."""
    x = _spatial_map(ctx)
    if x is None or getattr(ctx.layer, "interpolation", "nearest") != "nearest":
        return ctx.x
    size = ctx.layer.size
    sizes = [int(size)] * (x.offsets.ndim - 1) if isinstance(size, int) else [int(v) for v in size]

    def repeat(a: np.ndarray) -> np.ndarray:
        for axis, k in enumerate(sizes):
            a = np.repeat(a, k, axis=axis)
        return a

    return _with_maps(x, repeat)
