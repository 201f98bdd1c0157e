"""Rules for the leaf layers ``keras_hub`` defines (weights, no sublayers),
registered as ``"<module>.<class>"`` and listed in
``autoinit.keras_facts.HUB_LAYERS``. Its composite layers (transformer
blocks, token-and-position embeddings, patching) need no rule: the graph walk
descends into them (``keras_adapter.composite``) and meets these leaves and
Keras' own layers there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from autoinit.estimators.core import dense_weight_variance, estimate_dense, estimate_embedding
from autoinit.estimators.merging import estimate_add
from autoinit.estimators.mixture import gated_hidden, routing_concentration
from autoinit.estimators.normalization import estimate_layer_normalization
from autoinit.estimators.preprocessing import estimate_affine
from autoinit.keras_adapter.activations import resolve_activation
from autoinit.keras_adapter.composite import closed_shape
from autoinit.keras_adapter.context import LayerContext, without_offsets
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments

MODELING = "keras_hub.src.layers.modeling"


@rule(f"{MODELING}.position_embedding.PositionEmbedding")
def position_embedding(ctx: LayerContext) -> SignalMoments:
    """A learned table's first ``sequence_length`` rows, the same for every
    example: drawn with element variance ``target``, as an ``Embedding``."""
    first = ctx.first_call("embeddings")
    variance = ctx.weight_variance("embeddings", ctx.target)
    if first:
        ctx.write(ctx.layer.position_embeddings, variance, "embeddings", "initializer")
    ctx.aim(ctx.target)
    return estimate_embedding(variance)


RMS_NORM_GAINS: dict[str, tuple[str, float]] = {
    f"{MODELING}.rms_normalization.RMSNormalization": ("scale", 0.0),
    "keras_hub.src.models.gemma.rms_normalization.RMSNormalization": ("scale", 1.0),
    "keras_hub.src.models.gemma3.gemma3_layers.RMSNormalization": ("scale", 1.0),
    "keras_hub.src.models.gemma3n.rms_normalization.Gemma3nRMSNorm": ("scale", 0.0),
    "keras_hub.src.models.gpt_oss.gpt_oss_layer_norm.GptOssLayerNormalization": ("scale", 0.0),
    "keras_hub.src.models.llama.llama_layernorm.LlamaLayerNorm": ("scale", 0.0),
    "keras_hub.src.models.mistral.mistral_layer_norm.MistralLayerNormalization": ("scale", 0.0),
    "keras_hub.src.models.mixtral.mixtral_layer_norm.MixtralLayerNormalization": ("scale", 0.0),
    "keras_hub.src.models.phi3.phi3_layernorm.Phi3LayerNorm": ("scale", 0.0),
    "keras_hub.src.models.qwen.qwen_layernorm.QwenLayerNorm": ("scale", 0.0),
    "keras_hub.src.models.qwen3.qwen3_layernorm.Qwen3LayerNorm": ("scale", 0.0),
    "keras_hub.src.models.qwen3_5.qwen3_5_layers.Qwen3_5LayerNorm": ("scale", 1.0),
    "keras_hub.src.models.qwen3_moe.qwen3_moe_layernorm.Qwen3MoeLayerNorm": ("scale", 0.0),
    "keras_hub.src.models.qwen_moe.qwen_moe_layernorm.QwenMoeLayerNorm": ("scale", 0.0),
    "keras_hub.src.models.t5.t5_layer_norm.T5LayerNorm": ("weight", 0.0),
}
"""keras_hub's RMS norms, ``x * rsqrt(mean(x^2, -1) + eps) * gain``, by class:
the attribute holding the learned gain and what the call adds to it (Gemma's
and Qwen 3.5's ``1 + scale``, initialized at zero). Read from keras-hub 0.32's
sources."""


@rule(*RMS_NORM_GAINS)
def rms_normalization(ctx: LayerContext) -> SignalMoments:
    """``x / rms(x) * gain`` over the last axis (the gain as the model set
    it: a learned scale, which AutoInit leaves alone). A per-token
    rescaling: the per-example fraction stays, as ``LayerNormalization``'s."""
    cls = type(ctx.layer)
    attribute, added = RMS_NORM_GAINS[f"{cls.__module__}.{cls.__name__}"]
    gain = np.asarray(keras.ops.convert_to_numpy(getattr(ctx.layer, attribute, 1.0)), np.float64) + added
    epsilon = float(getattr(ctx.layer, "epsilon", getattr(ctx.layer, "eps", 1e-6)))
    features = int(ctx.input_shape[-1] or 1)
    y = estimate_layer_normalization(ctx.x, features, epsilon)
    y = estimate_affine(y, gain, 0.0, tuple(ctx.output_shape[1:]))
    return y.with_example_fraction_of(ctx.x)


@rule(
    f"{MODELING}.rotary_embedding.RotaryEmbedding",
    "keras_hub.src.models.llama.llama_rotary_embedding.LlamaRotaryEmbedding",
)
def rotary_embedding(ctx: LayerContext) -> SignalMoments:
    """Rotates pairs of features by position-dependent angles: a rotation
    keeps each pair's norm, so zero-mean features with equal variances keep
    their moments (per-position maps are forgotten)."""
    return without_offsets(ctx.x)


def _router(layer: Any) -> Any:
    return layer._sparse_feedforward_gate_dense.kernel


def _experts(name: str) -> Callable[[Any], Any]:
    return lambda layer: getattr(layer.expert_bank, name)


_EXPERT_OUT = "_expert_feedforward_output_dense"
_QWEN3_MOE_IN = {"experts_in": "_expert_feedforward_gate_dense"}  # gate and up, one stacked kernel
_MIXTRAL_IN = {
    "experts_gate": "_expert_feedforward_gate_dense",
    "experts_up": "_expert_feedforward_intermediate_dense",
}


def _moe_kernels(inputs: dict[str, str]) -> list[tuple[str, Callable[[Any], Any]]]:
    roles = [("router", _router), *((role, _experts(name)) for role, name in inputs.items())]
    return [*roles, ("experts_out", _experts(_EXPERT_OUT))]


@rule(
    "keras_hub.src.models.qwen3_moe.qwen3_moe_decoder.Qwen3SparseMoeBlock",
    kernels=_moe_kernels(_QWEN3_MOE_IN),
)
def qwen3_sparse_moe_block(ctx: LayerContext) -> list[SignalMoments]:
    """Qwen 3 MoE's block: top-k weights renormalized where ``norm_top_k_prob``."""
    return _sparse_moe_block(ctx, _QWEN3_MOE_IN, bool(ctx.layer.norm_top_k_prob))


@rule("keras_hub.src.models.mixtral.mixtral_decoder.MixtralSparseMoeBlock", kernels=_moe_kernels(_MIXTRAL_IN))
def mixtral_sparse_moe_block(ctx: LayerContext) -> list[SignalMoments]:
    """Mixtral's block: top-k weights always renormalized (its router's
    training jitter, a multiplicative noise near 1 on the input, is left out)."""
    return _sparse_moe_block(ctx, _MIXTRAL_IN, True)


def _sparse_moe_block(ctx: LayerContext, inputs: dict[str, str], normalized: bool) -> list[SignalMoments]:
    """A mixture of experts (``estimators.mixture``), one rule for the block:
    its ``call`` routes with ``top_k`` and ``one_hot``, which a trace would
    pass through. The router's logits get unit variance; each expert's gate
    and up projections unit variance (fan-in ``hidden_dim``) and its output
    projection the variance that, weighed by the routing weights'
    concentration ``E[sum r^2]``, gives the target. Outputs: the block's,
    and the router's logits."""
    layer, writer = ctx.layer, ctx.session.writer
    x = without_offsets(ctx.x)
    width, inner = int(layer.hidden_dim), int(layer.intermediate_dim)
    first = ctx.first_call("router")
    router_var = ctx.weight_variance("router", dense_weight_variance(x, width, 1.0))
    logits = estimate_dense(x, width, router_var)
    in_vars = {role: ctx.weight_variance(role, dense_weight_variance(x, width, 1.0)) for role in inputs}
    projected = estimate_dense(x, width, next(iter(in_vars.values())))
    hidden = gated_hidden(projected, projected, resolve_activation(layer.expert_bank.activation))
    concentration = routing_concentration(
        int(layer.num_experts), int(layer.top_k), normalized, logits.var, ctx.session.monte_carlo_samples
    )
    out_var = ctx.weight_variance(
        "experts_out", dense_weight_variance(hidden, inner, ctx.target / concentration)
    )
    if first and writer is not None:
        router, bank = layer._sparse_feedforward_gate_dense, layer.expert_bank
        writer.write(router, router.kernel, router_var, ctx.seed_place("router"), "kernel_initializer")
        for role, name in inputs.items():
            writer.write(bank, getattr(bank, name), in_vars[role], ctx.seed_place(role), None)
        writer.write(bank, getattr(bank, _EXPERT_OUT), out_var, ctx.seed_place("experts_out"), None)
    ctx.aim(ctx.target)
    expert = estimate_dense(hidden, inner, out_var)
    return [SignalMoments(0.0, concentration * expert.second_moment), logits]


@rule(f"{MODELING}.alibi_bias.AlibiBias")
def alibi_bias(ctx: LayerContext) -> SignalMoments:
    """Attention scores plus ALiBi's fixed bias (a slope per head times the
    key's distance, the same for every example): the scores' moments. The
    bias makes the steepest heads' attention local (more concentrated);
    counting its spread over heads and keys as random score variance
    overstates that for the gentle heads (Bloom, 4 blocks: attention
    outputs 0.58x instead of 0.88-1.16x), so it is left out."""
    return without_offsets(ctx.x)


@rule("keras_hub.src.models.vit.vit_layers.ViTPatchingAndEmbedding")
def vit_patching_and_embedding(ctx: LayerContext) -> SignalMoments:
    """A per-block rule: the layer's ``call`` looks its position table up on
    a constant (``position_ids``) and tiles a class-token variable, which a
    trace on Keras tensors would bake in as constants (so neither could be
    scaled, and a probe of the trace would read stale values). Here the
    patch convolution (fan-in ``patch^2 C``), the class token and the
    position table are each drawn for ``target``; the output, a patch (or
    the class token) plus its position's row, aims at ``2 target``."""
    layer = ctx.layer
    conv = layer.patch_embedding
    fan_in = int(np.prod(conv.kernel.shape[:-1]))
    z = ctx.dense_like(ctx.x, fan_in, conv.kernel, place="patch_kernel", initializer_attr=None)
    if ctx.session.writer is not None and getattr(conv, "bias", None) is not None:
        ctx.session.writer.zero(conv, conv.bias, "bias_initializer")
    target = ctx.target
    for place, variable in (
        ("class_token", getattr(layer, "class_token", None)),
        ("position", layer.position_embedding.embeddings),
    ):
        if variable is None:
            continue
        first = ctx.first_call(place)
        variance = ctx.weight_variance(place, target)
        if first:
            ctx.write(variable, variance, place, None)
    ctx.aim(2.0 * target, overwrite=True)
    return estimate_add([without_offsets(z), SignalMoments(0.0, target)])


@rule(f"{MODELING}.sine_position_encoding.SinePositionEncoding")
def sine_position_encoding(ctx: LayerContext) -> SignalMoments:
    """A fixed sinusoid table, the same for every example and whatever the
    input holds: its moments are the table's, computed once on the open
    length the probes feed."""
    shape = closed_shape(ctx.input_shape, 1)
    table = np.asarray(keras.ops.convert_to_numpy(ctx.layer(np.zeros(shape, "float32"))), np.float64)
    return SignalMoments(float(table.mean()), float(table.var()))
