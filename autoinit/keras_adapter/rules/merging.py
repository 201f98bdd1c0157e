"""Rules for merge layers (and the arithmetic ops Keras records in graphs)."""

from __future__ import annotations

from autoinit.estimators.merging import (
    estimate_add,
    estimate_average,
    estimate_concatenate,
    estimate_maximum,
    estimate_minimum,
    estimate_multiply,
    estimate_subtract,
)
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


@rule("Add")
def add(ctx: LayerContext) -> SignalMoments:
    return estimate_add(ctx.inputs)


@rule("Subtract")
def subtract(ctx: LayerContext) -> SignalMoments:
    return estimate_subtract(ctx.inputs)


@rule("Multiply")
def multiply(ctx: LayerContext) -> SignalMoments:
    return estimate_multiply(ctx.inputs)


@rule("Average")
def average(ctx: LayerContext) -> SignalMoments:
    return estimate_average(ctx.inputs)


@rule("Maximum")
def maximum(ctx: LayerContext) -> SignalMoments:
    return estimate_maximum(ctx.inputs)


@rule("Minimum")
def minimum(ctx: LayerContext) -> SignalMoments:
    return estimate_minimum(ctx.inputs)


@rule("Concatenate")
def concatenate(ctx: LayerContext) -> SignalMoments:
    axis = ctx.layer.axis
    sizes = [shape[axis] or 1 for shape in ctx.call.input_shapes]
    return estimate_concatenate(ctx.inputs, sizes)
