"""Rules for merge layers (and the arithmetic ops Keras records in graphs).

Per-example components (``example_shared_var``) of independent inputs add
like variances: ``sum a_i^2 e_i`` for ``sum a_i x_i``; concatenation averages
them over channels. Maximum, minimum and products leave it 0.

Inputs that are elementwise functions of one tensor (``x * sigmoid(x)``,
``x + x``) are merged as one function of that tensor, not as independent
(``context.one_function_of_one_tensor``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from autoinit.estimators.merging import (
    estimate_add,
    estimate_average,
    estimate_concatenate,
    estimate_maximum,
    estimate_minimum,
    estimate_multiply,
    estimate_subtract,
)
from autoinit.estimators.scale_mixture import gated_scale_var, summed_scale_var
from autoinit.keras_adapter.context import LayerContext, elementwise_source, one_function_of_one_tensor
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def _example(out: SignalMoments, xs: list[SignalMoments], weights: list[float]) -> SignalMoments:
    example = sum(w * x.example_shared_var for w, x in zip(weights, xs))
    return replace(out, example_shared_var=example) if example > 0.0 else out


def _summed_scale(out: SignalMoments, xs: list[SignalMoments], weights: list[float]) -> SignalMoments:
    """``sum a_i x_i``: the inputs' per-example scales (``scale_var``) taken as
    moving together (branches of one example), their scale-driven parts
    added like variances."""
    if all(x.scale_var <= 0.0 and x.scale_driven_var <= 0.0 for x in xs):
        return out
    kappa = summed_scale_var([w * x.random_var for w, x in zip(weights, xs)], [x.scale_var for x in xs])
    driven = sum(w * x.scale_driven_var for w, x in zip(weights, xs))
    return replace(out, scale_var=kappa, scale_driven_var=driven)


def _summed_covariance(out: SignalMoments, xs: list[SignalMoments], weights: list[float]) -> SignalMoments:
    """``sum a_i x_i`` of inputs taken as independent (as the estimators do):
    covariance ``sum a_i^2 C_i`` when every input carries one of ``out``'s shape."""
    if out.offsets is None or any(x.covariance is None or x.offsets.shape != out.offsets.shape for x in xs):
        return out
    return out.with_covariance(sum(w * np.asarray(x.covariance, np.float64) for w, x in zip(weights, xs)))


def _weighted_sum(out: SignalMoments, xs: list[SignalMoments], weights: list[float]) -> SignalMoments:
    """``out`` (a merge's estimate) with the parts ``sum a_i x_i`` carries from
    its inputs: per-example share, covariance and per-example scale."""
    return _summed_scale(_summed_covariance(_example(out, xs, weights), xs, weights), xs, weights)


@rule("Add")
def add(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("add", ctx.inputs)
    if same is not None:
        return same
    weights = [1.0] * len(ctx.inputs)
    return _weighted_sum(estimate_add(ctx.inputs), ctx.inputs, weights)


@rule("Subtract")
def subtract(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("subtract", ctx.inputs)
    if same is not None:
        return same
    weights = [1.0] * len(ctx.inputs)
    return _weighted_sum(estimate_subtract(ctx.inputs), ctx.inputs, weights)


@rule("Multiply")
def multiply(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("multiply", ctx.inputs)
    if same is not None:
        return same
    return _product_scale(ctx, _product_example(ctx, estimate_multiply(ctx.inputs)))


def _is_gate(ctx: LayerContext, shape: tuple) -> bool:
    """An input of one value per example and channel, broadcast over the
    output's positions (a squeeze-and-excitation gate of shape ``(1, 1, C)``)."""
    out_positions = ctx.output_shape[1:-1]
    positions = shape[1:-1]
    return bool(positions) and all(d == 1 for d in positions) and any((d or 2) > 1 for d in out_positions)


def _product_scale(ctx: LayerContext, out: SignalMoments) -> SignalMoments:
    """The per-example scale (``scale_var``) of a product. A gate ``g = f(h)``
    broadcast over the positions scales each example by its channels'
    average ``g^2`` (``scale_mixture.gated_scale_var``; the part of ``h`` that
    moves with the features' scale makes that average move with it). Two
    tensors with positions: ``(1 + k_a)(1 + k_b) - 1`` (independent scales)."""
    if len(ctx.inputs) != 2 or all(x.scale_var <= 0.0 and x.scale_driven_var <= 0.0 for x in ctx.inputs):
        return out
    (a, b), shapes = ctx.inputs, ctx.call.input_shapes[:2]
    gates = [_is_gate(ctx, shape) for shape in shapes]
    if gates[0] == gates[1]:
        kappa = (1.0 + a.scale_var) * (1.0 + b.scale_var) - 1.0
        driven = a.second_moment * b.scale_driven_var + b.second_moment * a.scale_driven_var
        return replace(out, scale_var=kappa, scale_driven_var=driven)
    x, g = (b, a) if gates[0] else (a, b)
    h, f = elementwise_source(g)
    h_offsets = h.offsets if h.offsets is not None else np.full(1, h.mean)
    h_var = np.broadcast_to(h.random_map(), h_offsets.shape)
    weights = _channel_energies(x)
    if weights is not None and weights.size != h_offsets.size:
        weights = None
    kappa = gated_scale_var(x.scale_var, f.fn, h_offsets, h_var, h.scale_driven_fraction, weights)
    g_second = float(np.mean(np.asarray(_channel_squares(g)) + g.random_var))
    driven = float(np.mean(_channel_squares(x))) * g.scale_driven_var + g_second * x.scale_driven_var
    return replace(out, scale_var=kappa, scale_driven_var=driven)


def _channel_energies(x: SignalMoments) -> np.ndarray | None:
    """Each channel's random variance (None without a map of expected values)."""
    if x.offsets is None:
        return None
    channels = x.offsets.shape[-1]
    return np.broadcast_to(x.random_map(), x.offsets.shape).reshape(-1, channels).mean(axis=0)


def _per_example(ctx: LayerContext, x: SignalMoments, shape: tuple) -> float:
    """``x``'s per-example component as it enters the product: all of its
    random part when it is broadcast over the output's positions (a
    squeeze-and-excite gate of shape ``(1, 1, C)``)."""
    out_positions = ctx.output_shape[1:-1]
    positions = shape[1:-1]
    if positions and all(d == 1 for d in positions) and any((d or 2) > 1 for d in out_positions):
        return x.random_var
    return x.example_shared_var


def _channel_squares(x: SignalMoments) -> np.ndarray:
    """Each channel's squared expected value (one number when unknown)."""
    x = x.per_channel()
    if x.offsets is not None:
        return np.asarray(x.offsets, np.float64) ** 2
    return np.asarray(x.mean * x.mean + x.shared_var)


def _product_example(ctx: LayerContext, out: SignalMoments) -> SignalMoments:
    """Per-example component of ``a * b`` for independent ``a``, ``b``: two
    positions of one example share ``e_a`` and ``e_b``, so per channel
    ``Cov(y_p, y_q) = (d_a^2 + e_a)(d_b^2 + e_b) - d_a^2 d_b^2`` (``d`` the
    channel's expected value), averaged over channels. A gate broadcast over
    the positions (squeeze-and-excite) brings its whole variance."""
    if len(ctx.inputs) != 2:
        return out
    (a, b), (shape_a, shape_b) = ctx.inputs, ctx.call.input_shapes[:2]
    e_a, e_b = _per_example(ctx, a, shape_a), _per_example(ctx, b, shape_b)
    if e_a <= 0.0 and e_b <= 0.0:
        return out
    d_a, d_b = _channel_squares(a), _channel_squares(b)
    if d_a.ndim and d_b.ndim and d_a.shape != d_b.shape:
        d_a, d_b = np.asarray(d_a.mean()), np.asarray(d_b.mean())
    example = float(np.mean(d_a * e_b + d_b * e_a + e_a * e_b))
    return replace(out, example_shared_var=example) if example > 0.0 else out


@rule("Average")
def average(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("average", ctx.inputs)
    if same is not None:
        return same
    n = len(ctx.inputs)
    weights = [1.0 / n**2] * n
    return _weighted_sum(estimate_average(ctx.inputs), ctx.inputs, weights)


@rule("Maximum")
def maximum(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("maximum", ctx.inputs)
    if same is not None:
        return same
    return estimate_maximum(ctx.inputs)


@rule("Minimum")
def minimum(ctx: LayerContext) -> SignalMoments:
    same = one_function_of_one_tensor("minimum", ctx.inputs)
    if same is not None:
        return same
    return estimate_minimum(ctx.inputs)


@rule("Concatenate")
def concatenate(ctx: LayerContext) -> SignalMoments:
    axis = ctx.layer.axis
    sizes = [shape[axis] or 1 for shape in ctx.call.input_shapes]
    total = float(sum(sizes))
    return _example(estimate_concatenate(ctx.inputs, sizes), ctx.inputs, [c / total for c in sizes])
