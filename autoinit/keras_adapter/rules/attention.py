"""Rule for MultiHeadAttention: all four projections are scaled."""

from __future__ import annotations

import numpy as np

from autoinit.estimators.attention import causal_rows, estimate_multi_head_attention, realised_attention
from autoinit.keras_adapter.composite import open_dim
from autoinit.keras_adapter.context import LayerContext, conditioning_factor, kept_keys, scaled
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments

_PROJECTIONS = ("query", "key", "value", "output")
_DENSE = {"query": "_query_dense", "key": "_key_dense", "value": "_value_dense", "output": "_output_dense"}


def _projection_kernel(role: str):
    """The kernel of the projection ``role`` of a MultiHeadAttention layer."""
    return lambda layer: getattr(getattr(layer, _DENSE[role], None), "kernel", None)


def _shape_of_input(ctx: LayerContext, value: SignalMoments) -> tuple:
    for moments, shape in zip(ctx.inputs, ctx.call.input_shapes):
        if moments is value:
            return shape
    return ctx.input_shape


@rule("MultiHeadAttention", kernels=[(role, _projection_kernel(role)) for role in _PROJECTIONS])
def multi_head_attention(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    named = dict(zip(("query", "value", "key"), ctx.args)) | ctx.kwargs
    query = named["query"]
    value = named.get("value", query)
    key = named.get("key") or value
    dense = {role: getattr(layer, attribute) for role, attribute in _DENSE.items()}
    first = ctx.first_call("query")
    given = None if first else tuple(ctx.session.chosen[id(layer)][p] for p in _PROJECTIONS)
    value_shape = _shape_of_input(ctx, value)
    key_length = int((value_shape[1] if len(value_shape) > 2 else None) or open_dim())
    kept = _kept_keys(ctx, query, key_length)
    scales = estimate_multi_head_attention(
        query,
        key,
        value,
        query_features=int(dense["query"].kernel.shape[0]),
        key_features=int(dense["key"].kernel.shape[0]),
        value_features=int(dense["value"].kernel.shape[0]),
        num_heads=int(layer.num_heads),
        value_dim=int(layer.value_dim),
        key_length=key_length,
        dropout=float(layer.dropout),
        target=ctx.target,
        samples=ctx.session.monte_carlo_samples,
        weight_variances=given,
        kept=kept,
    )
    variances = dict(zip(_PROJECTIONS, (scales.query, scales.key, scales.value, scales.output)))
    for place, variance in variances.items():
        ctx.weight_variance(place, variance)
    if first and ctx.session.writer is not None:
        for place, sub in dense.items():
            ctx.session.writer.write(
                sub, sub.kernel, variances[place], ctx.seed_place(place), "kernel_initializer"
            )
            if getattr(sub, "bias", None) is not None:
                ctx.session.writer.zero(sub, sub.bias, "bias_initializer")
        # The layer's config carries one kernel initializer for all four
        # projections: record the query's (exact for the rebuilt q/k/v when
        # they share fan-in and input moments; the output differs).
        layer._kernel_initializer = dense["query"].kernel_initializer
        layer._bias_initializer = dense["query"].bias_initializer
    result = scales.result
    if ctx.session.writer is not None:
        realised = realised_attention(
            value,
            _numpy(dense["value"].kernel),
            _numpy(dense["output"].kernel),
            scales.concentration,
            key_length,
            float(layer.dropout),
            scales.overlap,
            scales.heads_overlap,
        )
        if realised is not None:
            result = realised
            if first and ctx.session.condition_on_draw:
                result = _condition_output(ctx, dense["output"], variances["output"], realised)
    ctx.aim(ctx.target)
    return result


def _kept_keys(ctx: LayerContext, query: SignalMoments, keys: int) -> np.ndarray | None:
    """The keys each query keeps, ``(..., queries, keys)`` booleans: the
    causal mask (``use_causal_mask``) and a known ``attention_mask``
    combined, as Keras combines them; None when every query sees every key."""
    query_shape = _shape_of_input(ctx, query)
    queries = int((query_shape[1] if len(query_shape) > 2 else None) or open_dim())
    kept = kept_keys(ctx.kwargs.get("attention_mask"), queries, keys)
    if ctx.kwargs.get("use_causal_mask", False):
        causal = causal_rows(queries, keys)
        kept = causal if kept is None else kept & causal
    return kept


def _numpy(variable) -> np.ndarray:
    return np.asarray(variable.numpy(), dtype=np.float64)


def _condition_output(ctx: LayerContext, output, variance: float, z: SignalMoments) -> SignalMoments:
    """Redraw the output kernel so the realised output has second moment
    ``target`` (see ``context`` on conditioning on the draw)."""
    factor = conditioning_factor(z, ctx.target)
    if factor is None:
        return z
    variance *= factor
    ctx.session.chosen[id(ctx.layer)]["output"] = variance
    ctx.note.weight_variances["output"] = variance
    ctx.session.writer.write(output, output.kernel, variance, ctx.seed_place("output"), "kernel_initializer")
    return scaled(z, factor).with_example_fraction(z.example_fraction)
