"""Rules for activation layers (``keras.layers`` activations family)."""

from __future__ import annotations

import numpy as np

from autoinit.estimators.activations import estimate_masked_softmax
from autoinit.keras_adapter.composite import closed_shape
from autoinit.keras_adapter.context import LayerContext, known_mask, normalized_axes, size_over_axes
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


@rule("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU")
def activation(ctx: LayerContext) -> SignalMoments:
    fn = ctx.layer.activation if type(ctx.layer).__name__ == "Activation" else ctx.layer
    return ctx.activate(ctx.x, fn)


@rule("Softmax")
def softmax(ctx: LayerContext) -> SignalMoments:
    axes = normalized_axes(ctx.layer.axis, len(ctx.input_shape))
    size = size_over_axes(ctx.input_shape, axes)
    mask = ctx.kwargs.get("mask", ctx.args[1] if len(ctx.args) > 1 else None)
    valid = _valid_counts(mask, ctx.input_shape, axes)
    if valid is None:
        return ctx.activate(ctx.x, "softmax", axis_size=size)
    ctx.note.pre_activation = ctx.x
    return estimate_masked_softmax(ctx.x, valid, size, samples=ctx.session.monte_carlo_samples)


def _valid_counts(mask: object, shape: tuple, axes: list[int]) -> np.ndarray | None:
    """Per softmax row, how many elements ``mask`` keeps (``known_mask``);
    None without a known mask or if it does not broadcast to the scores."""
    known = known_mask(mask)
    if known is None:
        return None
    try:
        kept = np.broadcast_to(known, closed_shape(shape, 1))
    except ValueError:
        return None
    return kept.sum(axis=tuple(axes))
