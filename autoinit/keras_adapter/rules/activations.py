"""Rules for activation layers (``keras.layers`` activations family)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from autoinit.estimators.activations import estimate_masked_softmax
from autoinit.estimators.attention import row_overlap
from autoinit.keras_adapter.composite import closed_shape
from autoinit.keras_adapter.context import LayerContext, known_mask, normalized_axes, size_over_axes
from autoinit.keras_adapter.rules import keeps_weights_axis, rule
from autoinit.moments import SignalMoments


@rule("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU")
def activation(ctx: LayerContext) -> SignalMoments:
    fn = ctx.layer.activation if type(ctx.layer).__name__ == "Activation" else ctx.layer
    return ctx.activate(ctx.x, fn)


@keeps_weights_axis
@rule("Softmax")
def softmax(ctx: LayerContext) -> SignalMoments:
    axes = normalized_axes(ctx.layer.axis, len(ctx.input_shape))
    size = size_over_axes(ctx.input_shape, axes)
    mask = ctx.kwargs.get("mask", ctx.args[1] if len(ctx.args) > 1 else None)
    kept = _kept(mask, ctx.input_shape)
    last = axes == [len(ctx.input_shape) - 1]
    if kept is None:
        y = ctx.activate(ctx.x, "softmax", axis_size=size)
        return replace(y, weights_overlap=1.0 / size) if last else y
    ctx.note.pre_activation = ctx.x
    valid = kept.sum(axis=tuple(axes))
    y = estimate_masked_softmax(ctx.x, valid, size, samples=ctx.session.monte_carlo_samples)
    if not last:
        return y
    return replace(y, weights_overlap=row_overlap(kept.reshape(-1, *kept.shape[-2:]), size))


def _kept(mask: object, shape: tuple) -> np.ndarray | None:
    """``mask`` (``known_mask``) broadcast to the scores of one example; None
    without a known mask or if it does not broadcast to them."""
    known = known_mask(mask)
    if known is None:
        return None
    try:
        return np.broadcast_to(known, closed_shape(shape, 1))
    except ValueError:
        return None
