"""The ``keras_hub`` corpus: small backbones built from arguments (no download).

Seven backbones at one small size (vocabulary 1000, 2 layers, 4 heads,
hidden 64, intermediate 128, max sequence length 64; ViT on 32x32x3 images in
8x8 patches): encoders (BERT, RoBERTa, DistilBERT), decoders with causal
attention (GPT-2, Gemma, Llama; the last two with grouped-query attention,
rotary embeddings and RMS norms) and a vision transformer. Their blocks are
composite layers (sublayers with weights) which AutoInit descends into.
Shared by ``tests/test_hub_models.py`` and ``benchmarks/bench_hub_models.py``.

Import it only once ``keras_hub`` is known to import (the test module skips
without it).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import keras
import keras_hub

VOCABULARY = 1000
LAYERS = 2
HEADS = 4
HIDDEN = 64
INTERMEDIATE = 128
MAX_SEQUENCE = 64

_TEXT = {
    "vocabulary_size": VOCABULARY,
    "num_layers": LAYERS,
    "num_heads": HEADS,
    "hidden_dim": HIDDEN,
    "intermediate_dim": INTERMEDIATE,
    "max_sequence_length": MAX_SEQUENCE,
}
_DECODER = {  # Gemma and Llama: grouped-query attention (4 query heads, 2 key/value heads)
    "vocabulary_size": VOCABULARY,
    "num_layers": LAYERS,
    "num_query_heads": HEADS,
    "num_key_value_heads": 2,
    "hidden_dim": HIDDEN,
    "intermediate_dim": INTERMEDIATE,
}


def bert() -> keras.Model:
    return keras_hub.models.BertBackbone(**_TEXT)


def gpt2() -> keras.Model:
    return keras_hub.models.GPT2Backbone(**_TEXT)


def roberta() -> keras.Model:
    return keras_hub.models.RobertaBackbone(**_TEXT)


def distil_bert() -> keras.Model:
    return keras_hub.models.DistilBertBackbone(**_TEXT)


def gemma() -> keras.Model:
    return keras_hub.models.GemmaBackbone(**_DECODER, head_dim=HIDDEN // HEADS)


def llama() -> keras.Model:
    return keras_hub.models.LlamaBackbone(**_DECODER)


def vit() -> keras.Model:
    return keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=LAYERS,
        num_heads=HEADS,
        hidden_dim=HIDDEN,
        mlp_dim=INTERMEDIATE,
    )


HUB: dict[str, Callable[[], keras.Model]] = {
    "BertBackbone": bert,
    "GPT2Backbone": gpt2,
    "ViTBackbone": vit,
    "RobertaBackbone": roberta,
    "DistilBertBackbone": distil_bert,
    "GemmaBackbone": gemma,
    "LlamaBackbone": llama,
}
"""Every backbone of the corpus, by class name: a builder returning a fresh model."""


#: More keras_hub backbones, built by ``small_backbone`` (no fixed sizes of their
#: own): decoders with RMS norms of their own class (Mistral, Qwen, Qwen 3, Phi-3,
#: Llama 3, Gemma 3), ALiBi (Bloom, Falcon), a block returning ``(outputs, None)``
#: (GPT-NeoX, T5), encoders and an encoder-decoder (ALBERT, XLM-R, BART, T5), a mixture of
#: experts (Qwen 3 MoE, Mixtral: 8 experts, 2 per token).
MORE_HUB = (
    "MistralBackbone", "QwenBackbone", "Qwen3Backbone", "Phi3Backbone", "Llama3Backbone",
    "Gemma3Backbone", "FalconBackbone", "GPTNeoXBackbone", "BloomBackbone", "OPTBackbone",
    "AlbertBackbone", "BartBackbone", "XLMRobertaBackbone", "T5Backbone", "Qwen3MoeBackbone",
    "MixtralBackbone",
)  # fmt: skip

_SMALL = {
    "vocabulary_size": VOCABULARY, "num_heads": HEADS, "num_query_heads": HEADS, "num_attention_heads": HEADS,
    "num_key_value_heads": 2, "hidden_dim": HIDDEN, "embedding_dim": HIDDEN, "intermediate_dim": INTERMEDIATE,
    "head_dim": HIDDEN // HEADS, "max_sequence_length": MAX_SEQUENCE, "image_size": None,
    "moe_intermediate_dim": INTERMEDIATE // 4, "num_experts": 8, "top_k": 2,
}  # fmt: skip
"""Sizes by argument name, for whichever of them a backbone's constructor takes."""


def small_backbone(name: str, blocks: int = LAYERS) -> keras.Model:
    """``keras_hub.models.<name>`` at this corpus' sizes with ``blocks``
    transformer blocks (the arguments it takes of ``_SMALL``)."""
    cls = getattr(keras_hub.models, name)
    taken = inspect.signature(cls.__init__).parameters
    return cls(num_layers=blocks, **{k: v for k, v in _SMALL.items() if k in taken})


def with_blocks(name: str, blocks: int) -> keras.Model:
    """The text backbone ``name`` of the corpus with ``blocks`` transformer
    blocks instead of ``LAYERS`` (what builds up block after block)."""
    arguments = {**(_DECODER if name in ("GemmaBackbone", "LlamaBackbone") else _TEXT), "num_layers": blocks}
    extra = {"head_dim": HIDDEN // HEADS} if name == "GemmaBackbone" else {}
    return getattr(keras_hub.models, name)(**arguments, **extra)


def weighted_leaves(model: keras.Model) -> list[Any]:
    """Every layer (at any depth) that owns a kernel or an embedding table
    and has no sublayer with weights, in ``_flatten_layers`` order.

    Normalization layers (``gamma``/``beta``, RMS ``scale``) are left out:
    AutoInit does not rescale them (they keep the model's own init), so they
    are not counted as "to be scaled".
    """
    leaves = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not layer.weights or isinstance(layer, keras.Model):
            continue
        subs = layer._flatten_layers(include_self=False, recursive=True)
        if any(sub.weights for sub in subs) or is_normalization(layer):
            continue
        leaves.append(layer)
    return leaves


def leaf_path(layer: Any) -> str:
    """Where a leaf sits in the model, as AutoInit and the probe name it
    (``transformer_layer_0/self_attention/query``): its variables' path
    without the variable's own name."""
    return layer.weights[0].path.rsplit("/", 1)[0]


def scaling_record(path: str, estimates: list[dict]) -> dict | None:
    """The estimate record with a target that scaled the leaf at ``path``: its
    own, or an enclosing layer's that one rule handles whole (Keras'
    ``MultiHeadAttention`` scales its four projections in one record)."""
    for record in estimates:
        if record["target"] is not None and (record["name"] == path or path.startswith(record["name"] + "/")):
            return record
    return None


def band_ratios(estimates: list[dict], measured: list[dict]) -> dict[str, float]:
    """Measured E[y^2] / target for every estimate record with a target: the
    probe's ``mean^2 + var`` of the layer's output, or of its pre-activation
    ``W x + b`` when the record has one (the target refers to it). A record
    the probe did not measure reads NaN."""
    probed = {r["name"]: r for r in measured}
    ratios = {}
    for record in estimates:
        if record["target"] is None:
            continue
        m = probed.get(record["name"], {})
        if "pre_activation" in record:
            m = m.get("pre_activation", {})
        ratios[record["name"]] = _second_moment(m) / record["target"]
    return ratios


def _second_moment(moments: dict) -> float:
    """``mean^2 + var``; NaN where unmeasured or overflowed (None)."""
    mean, var = moments.get("mean"), moments.get("var")
    return math.nan if mean is None or var is None else mean**2 + var


def is_normalization(layer: Any) -> bool:
    """A normalization layer: Keras' own, or one ``keras_hub`` defines (RMS norms)."""
    if isinstance(layer, keras.layers.LayerNormalization | keras.layers.BatchNormalization):
        return True
    name = type(layer).__name__
    return "Norm" in name
