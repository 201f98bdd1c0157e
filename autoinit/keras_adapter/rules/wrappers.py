"""Rules for wrapper layers that apply another layer."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from autoinit.keras_adapter.context import MAP_ELEMENTS, LayerContext
from autoinit.keras_adapter.rules import rule, wrapped_rule
from autoinit.moments import SignalMoments


def _drop_time(shape: tuple) -> tuple:
    """``(batch, time, *rest)`` -> ``(batch * time, *rest)``: how the inner layer sees it."""
    return (None, *shape[2:])


@rule("TimeDistributed")
def time_distributed(ctx: LayerContext) -> SignalMoments:
    """``TimeDistributed(inner)`` applies ``inner`` to every time step with the
    same weights: each step's elements have the input's moments, so the output
    moments are the inner layer's, with time folded into the batch. Maps of
    expected values are dropped (their time axis is not the inner layer's)."""
    inner, inner_rule = wrapped_rule(ctx, "register a custom estimator for TimeDistributed")
    call = replace(
        ctx.call,
        layer=inner,
        input_shapes=tuple(_drop_time(s) for s in ctx.call.input_shapes),
        output_shapes=tuple(_drop_time(s) for s in ctx.call.output_shapes),
    )
    # Expected values that vary along time cannot be given to one inner call:
    # keep one value per channel then (a map over the inner axes is kept).
    inputs = [
        m.per_channel() if m.offsets is not None and m.offsets.ndim == len(shape) - 1 else m
        for m, shape in zip(ctx.inputs, ctx.call.input_shapes)
    ]
    inner_ctx = LayerContext(call=call, inputs=inputs, args=(), kwargs={}, session=ctx.session, note=ctx.note)
    z = inner_rule(inner_ctx)
    return _over_time(z, ctx.output_shape) if isinstance(z, SignalMoments) else z


def _over_time(z: SignalMoments, shape: tuple) -> SignalMoments:
    """The inner output's map, the same at every time step, as a map of the
    wrapper's output (or per channel when that would be too large)."""
    full = tuple(shape[1:])
    if z.offsets is None or any(d is None for d in full):
        return z
    if z.offsets.shape != full[1:] or math.prod(full) > MAP_ELEMENTS:
        return z.per_channel()  # one value per channel fits any shape
    offsets = np.broadcast_to(z.offsets, full)
    random = np.broadcast_to(np.broadcast_to(z.random_map(), z.offsets.shape), full)
    return SignalMoments.from_offsets(offsets, random, z.origin)
