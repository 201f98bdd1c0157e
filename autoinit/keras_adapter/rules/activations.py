"""Rules for activation layers (``keras.layers`` activations family)."""

from __future__ import annotations

from autoinit.keras_adapter.context import LayerContext, normalized_axes, size_over_axes
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


@rule("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU")
def activation(ctx: LayerContext) -> SignalMoments:
    fn = ctx.layer.activation if type(ctx.layer).__name__ == "Activation" else ctx.layer
    return ctx.activate(ctx.x, fn)


@rule("Softmax")
def softmax(ctx: LayerContext) -> SignalMoments:
    size = size_over_axes(ctx.input_shape, normalized_axes(ctx.layer.axis, len(ctx.input_shape)))
    return ctx.activate(ctx.x, "softmax", axis_size=size)
