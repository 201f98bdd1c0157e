"""Rules for the leaf layers ``keras_hub`` defines (weights, no sublayers),
registered as ``"<module>.<class>"`` and listed in
``autoinit.keras_facts.HUB_LAYERS``. Its composite layers (transformer
blocks, token-and-position embeddings, patching) need no rule: the graph walk
descends into them (``keras_adapter.composite``) and meets these leaves and
Keras' own layers there.
"""

from __future__ import annotations

import keras
import numpy as np

from autoinit.estimators.core import estimate_embedding
from autoinit.estimators.merging import estimate_add
from autoinit.estimators.normalization import estimate_layer_normalization
from autoinit.estimators.preprocessing import estimate_affine
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


def _rms_normalized(ctx: LayerContext, gain: np.ndarray) -> SignalMoments:
    """``x / rms(x) * gain`` over the last axis (the gain as the model set
    it: a learned scale, which AutoInit leaves alone). A per-token
    rescaling: the per-example fraction stays, as ``LayerNormalization``'s."""
    features = int(ctx.input_shape[-1] or 1)
    y = estimate_layer_normalization(ctx.x, features, float(ctx.layer.epsilon))
    y = estimate_affine(y, gain, 0.0, tuple(ctx.output_shape[1:]))
    return y.with_example_fraction(ctx.x.example_fraction) if ctx.x.example_shared_var > 0.0 else y


def _scale(ctx: LayerContext) -> np.ndarray:
    return np.asarray(ctx.layer.scale.numpy(), np.float64)


@rule("keras_hub.src.models.gemma.rms_normalization.RMSNormalization")
def gemma_rms_normalization(ctx: LayerContext) -> SignalMoments:
    return _rms_normalized(ctx, 1.0 + _scale(ctx))


@rule("keras_hub.src.models.llama.llama_layernorm.LlamaLayerNorm")
def llama_layer_norm(ctx: LayerContext) -> SignalMoments:
    return _rms_normalized(ctx, _scale(ctx))


@rule(
    f"{MODELING}.rotary_embedding.RotaryEmbedding",
    "keras_hub.src.models.llama.llama_rotary_embedding.LlamaRotaryEmbedding",
)
def rotary_embedding(ctx: LayerContext) -> SignalMoments:
    """Rotates pairs of features by position-dependent angles: a rotation
    keeps each pair's norm, so zero-mean features with equal variances keep
    their moments (per-position maps are forgotten)."""
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
