"""Rules for activation layers (``keras.layers`` activations family)."""

from __future__ import annotations

import keras
import numpy as np

from autoinit.estimators.activations import estimate_masked_softmax
from autoinit.keras_adapter.composite import closed_shape
from autoinit.keras_adapter.context import LayerContext, normalized_axes, size_over_axes
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
    """Per softmax row, how many elements ``mask`` keeps (a concrete mask the
    walk evaluated, see ``propagate``, or a constant one, e.g. a causal mask
    a composite builds from shapes alone); None without one or if it does not
    broadcast to the scores."""
    if mask is None or isinstance(mask, SignalMoments):
        return None
    try:  # an array the walk evaluated, or a constant the trace baked in
        mask = np.asarray(keras.ops.convert_to_numpy(mask))
    except (TypeError, ValueError):
        return None
    full = closed_shape(shape, 1)
    try:
        kept = np.broadcast_to(mask.astype(bool), full)
    except ValueError:
        return None
    return kept.sum(axis=tuple(axes))
