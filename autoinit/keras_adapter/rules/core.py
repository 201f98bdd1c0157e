"""Rules for the core family: Dense, EinsumDense, Embedding, and the layers
that pass their input through (Identity, Masking)."""

from __future__ import annotations

import functools
import math
import re

from autoinit.errors import EstimationError
from autoinit.estimators.core import estimate_dense_realised, estimate_einsum_realised, estimate_embedding
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


def finish_weighted(ctx: LayerContext, z: SignalMoments) -> SignalMoments:
    """Zero the layer's bias and apply its fused activation to ``z = W x``."""
    ctx.zero(getattr(ctx.layer, "bias", None))
    return ctx.activate(z, getattr(ctx.layer, "activation", None))


@rule("Dense", kernels=[("kernel", "kernel")])
def dense(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    z = ctx.dense_like(ctx.x, int(layer.kernel.shape[0]), layer.kernel, realised=estimate_dense_realised)
    return finish_weighted(ctx, z)


def einsum_fan_in(equation: str, kernel_shape: tuple) -> int:
    """Product of the kernel dimensions the equation sums over."""
    match = re.match(r"^([\w.]+),([\w.]+)->([\w.]+)$", equation.replace(" ", ""))
    if not match:
        raise EstimationError(f"Expected an einsum equation 'in,kernel->out'. Received: {equation!r}")
    lhs, kernel, out = (s.replace("...", "") for s in match.groups())
    contracted = [i for i, letter in enumerate(kernel) if letter in lhs and letter not in out]
    return math.prod(int(kernel_shape[i]) for i in contracted) or 1


@rule("EinsumDense", kernels=[("kernel", "kernel")])
def einsum_dense(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    fan_in = einsum_fan_in(layer.equation, tuple(layer.kernel.shape))
    realised = None
    shape = ctx.input_shape
    if all(d is not None for d in shape[1:]):
        realised = functools.partial(estimate_einsum_realised, equation=layer.equation)
    z = ctx.dense_like(ctx.x, fan_in, layer.kernel, realised=realised, in_channels=shape[-1])
    return finish_weighted(ctx, z)


@rule(
    "Embedding",
    "ReversibleEmbedding",
    "keras_hub.src.layers.modeling.reversible_embedding.ReversibleEmbedding",
    kernels=[("embeddings", "embeddings"), ("reverse_embeddings", "reverse_embeddings")],
)
def embedding(ctx: LayerContext) -> SignalMoments:
    layer = ctx.layer
    first = ctx.first_call("embeddings")
    variance = ctx.weight_variance("embeddings", ctx.target)
    if first:
        ctx.write(layer.embeddings, variance, "embeddings", "embeddings_initializer")
    reverse = getattr(layer, "reverse_embeddings", None)  # ReversibleEmbedding, untied
    if reverse is not None:
        # The output projection (``reverse=True``: logits = x W^T over
        # ``output_dim`` features of unit second moment, a normalized stream).
        first_reverse = ctx.first_call("reverse_embeddings")
        chosen = ctx.weight_variance("reverse_embeddings", ctx.target / max(int(layer.output_dim), 1))
        if first_reverse:
            ctx.write(reverse, chosen, "reverse_embeddings", None)
    ctx.aim(ctx.target)
    # Uniformly random ids (the probes' tokens) put the same row at two
    # positions of one example with probability 1 / input_dim: a share of
    # the variance that attention's averaging over positions cannot shrink
    # (BERT's two segment ids: half of it).
    return estimate_embedding(variance).with_example_fraction(1.0 / max(int(layer.input_dim), 1))


@rule("Identity", "Masking")
def identity(ctx: LayerContext) -> SignalMoments:
    """The output is the input. ``Masking`` zeroes the time steps whose
    features all equal ``mask_value``: a set of measure zero for continuous
    inputs, so its output is its input (keeps every map and covariance)."""
    return ctx.x
