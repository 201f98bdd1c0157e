"""Rules for layers that move, copy, pad or rescale elements."""

from __future__ import annotations

import numpy as np

from autoinit.estimators.core import estimate_rescaling
from autoinit.estimators.reshaping import estimate_zero_padding, padded_fraction
from autoinit.keras_adapter.context import LayerContext, element_count, without_offsets
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments

SHAPE_LAYERS = (
    "Flatten", "Reshape", "Permute", "RepeatVector", "Identity",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "Cropping1D", "Cropping2D", "Cropping3D",
)
# Layers that may move elements between channels of the last axis.
CHANNEL_MIXING = frozenset({"Flatten", "Reshape", "Permute"})


@rule(*SHAPE_LAYERS)
def shape_only(ctx: LayerContext) -> SignalMoments:
    """Paper: shape layers leave the distribution unchanged. (Keeps ``origin``;
    forgets per-channel offsets where the channel axis may change.)"""
    if type(ctx.layer).__name__ in CHANNEL_MIXING:
        return without_offsets(ctx.x)
    return ctx.x


@rule("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D")
def zero_padding(ctx: LayerContext) -> SignalMoments:
    fraction = padded_fraction(element_count(ctx.input_shape), element_count(ctx.output_shape))
    return estimate_zero_padding(ctx.x, fraction)


@rule("Rescaling")
def rescaling(ctx: LayerContext) -> SignalMoments:
    scale = float(np.mean(ctx.layer.scale))
    offset = float(np.mean(ctx.layer.offset))
    return estimate_rescaling(ctx.x, scale, offset)
