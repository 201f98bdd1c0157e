"""What a vetted keras_hub class's arguments say about its size, before it is built.

A backbone's config states no layers and no shapes, only arguments
(``vocabulary_size``, ``num_layers``, ``hidden_dim``, ...); its parameters
follow from them exactly: embeddings, plus ``num_layers`` times one block
(attention ``4 h^2`` for ``h = hidden_dim``, feed-forward ``2 h f`` for
``f = intermediate_dim``, their biases and norms). `backbone_parameters`
writes that count per architecture (as keras-hub 0.32 builds it; the tests
compare it with ``count_params()``), so ``vocabulary_size=10**9`` or
``hidden_dim=10**6`` is refused by the upload's parameter bound before
anything is built. The keras_hub layers an uploaded Functional model may use
get rules of the same shape as `autoinit.upload.params`' own
(`LAYER_PARAMETER_RULES`, `LAYER_SHAPE_RULES`).

The probe's memory is estimated the same way: per example, a backbone's
layer outputs (the walk descends into every block, as the probe does) are a
fixed set per block of ``S x h``, ``S x f`` and ``heads x S x S`` tensors,
``S`` the sequence the probe feeds (`OPEN_LENGTH` tokens; a ViT's patches).
The coefficients are fitted to ``autoinit.probe.memory.activation_sizes`` of
the built backbones and rounded up (the tests keep them above it, and within
a small factor).

Pure standard library: it runs in the API process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autoinit.errors import ModelConfigError
from autoinit.upload.hub_arguments import OPEN_LENGTH

__all__ = [
    "BackboneActivations",
    "LAYER_PARAMETER_RULES",
    "LAYER_SHAPE_RULES",
    "backbone_activations",
    "backbone_layer_count",
    "backbone_parameters",
    "composite_work",
    "inner_layer_count",
]

Shape = tuple[int | None, ...]


def _attention(query_width: int, value_width: int, heads: int, head_dim: int, bias: bool = True) -> int:
    """``keras.layers.MultiHeadAttention``: query, key, value and output projections."""
    inner = heads * head_dim
    projections = inner * (query_width + bias) + 2 * inner * (value_width + bias)
    return projections + inner * query_width + query_width * bias


def _feedforward(width: int, inner: int) -> int:
    """Two dense layers with biases: ``width -> inner -> width``."""
    return width * inner + inner + inner * width + width


def _encoder_block(width: int, inner: int, heads: int) -> int:
    """keras_hub's ``TransformerEncoder`` (and a ``TransformerDecoder`` without
    cross-attention): attention with ``width // heads`` features a head, two
    layer norms, the feed-forward."""
    return _attention(width, width, heads, width // heads) + 4 * width + _feedforward(width, inner)


# --- Backbones -----------------------------------------------------------------


def _size(config: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = config.get(name, default)
    return value if isinstance(value, int) else default


def _text_encoder(
    config: Mapping[str, Any], segments: bool, pooler: bool, final_norm: bool
) -> list[tuple[str, int]]:
    """BERT, RoBERTa, DistilBERT, GPT-2: learned token and position tables."""
    v, layers = config["vocabulary_size"], config["num_layers"]
    h, f, heads = config["hidden_dim"], config["intermediate_dim"], config["num_heads"]
    parts = [
        ("token embedding (vocabulary_size x hidden_dim)", v * h),
        (
            "position embedding (max_sequence_length x hidden_dim)",
            _size(config, "max_sequence_length", 512) * h,
        ),
    ]
    if segments:
        parts.append(("segment embedding (num_segments x hidden_dim)", _size(config, "num_segments", 2) * h))
    if not final_norm:  # GPT-2 normalizes after its blocks instead
        parts.append(("embedding layer norm", 2 * h))
    parts.append((f"{layers} transformer blocks (num_layers)", layers * _encoder_block(h, f, heads)))
    if pooler:
        parts.append(("pooler", h * h + h))
    if final_norm:
        parts.append(("final layer norm", 2 * h))
    return parts


def _bert(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    return _text_encoder(config, segments=True, pooler=True, final_norm=False)


def _encoder_only(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    return _text_encoder(config, segments=False, pooler=False, final_norm=False)


def _gemma(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    v, layers, h, f = (config[k] for k in ("vocabulary_size", "num_layers", "hidden_dim", "intermediate_dim"))
    queries, kv, head = config["num_query_heads"], config["num_key_value_heads"], config["head_dim"]
    norms = 2 + bool(config.get("use_post_ffw_norm")) + bool(config.get("use_post_attention_norm"))
    attention = h * queries * head + 2 * h * kv * head + queries * head * h  # no biases
    block = norms * h + attention + 3 * h * (f // 2)  # two gates and the output, f // 2 wide
    return [
        ("token embedding (vocabulary_size x hidden_dim)", v * h),
        (f"{layers} decoder blocks (num_layers)", layers * block),
        ("final norm", h),
    ]


def _gated_decoder(
    config: Mapping[str, Any], head: int, qkv_bias: bool, tables: int
) -> list[tuple[str, int]]:
    """Llama, Mistral, Qwen: grouped-query attention (query and key/value
    biases where ``qkv_bias``), two RMS norms and a gated feed-forward per
    block, no other biases."""
    v, layers, h, f = (config[k] for k in ("vocabulary_size", "num_layers", "hidden_dim", "intermediate_dim"))
    queries, kv = config["num_query_heads"], config["num_key_value_heads"]
    attention = (h + qkv_bias) * queries * head + 2 * (h + qkv_bias) * kv * head + queries * head * h
    block = 2 * h + attention + 3 * h * f
    return [
        (
            f"token embedding (vocabulary_size x hidden_dim{', untied: twice' if tables == 2 else ''})",
            tables * v * h,
        ),
        (f"{layers} decoder blocks (num_layers)", layers * block),
        ("final norm", h),
    ]


def _llama(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    tables = 1 if config.get("tie_word_embeddings", False) else 2
    return _gated_decoder(
        config, config["hidden_dim"] // config["num_query_heads"], qkv_bias=False, tables=tables
    )


def _mistral(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    head = config.get("head_dim") or config["hidden_dim"] // config["num_query_heads"]
    return _gated_decoder(config, head, qkv_bias=False, tables=2)


def _qwen(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    tables = 1 if config.get("tie_word_embeddings", True) else 2
    return _gated_decoder(
        config, config["hidden_dim"] // config["num_query_heads"], qkv_bias=True, tables=tables
    )


def _vit_geometry(config: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """(channels, patch area, tokens, pixels per example) of a ViT config."""
    image, patch = config["image_shape"], config["patch_size"]
    patch = [patch, patch] if isinstance(patch, int) else patch
    first = config.get("data_format") == "channels_first"
    channels, spatial = (image[0], image[1:]) if first else (image[2], image[:2])
    patches = (spatial[0] // patch[0]) * (spatial[1] // patch[1])
    tokens = patches + bool(config.get("use_class_token", True))
    return channels, patch[0] * patch[1], tokens, math.prod(image)


def _vit(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    layers, h, m, heads = (config[k] for k in ("num_layers", "hidden_dim", "mlp_dim", "num_heads"))
    channels, area, tokens, _ = _vit_geometry(config)
    attention_bias, mlp_bias = bool(config.get("use_mha_bias", True)), bool(config.get("use_mlp_bias", True))
    mlp = h * m + m * h + (m + h) * mlp_bias
    block = 4 * h + _attention(h, h, heads, h // heads, attention_bias) + mlp
    return [
        (
            "patch embedding (patch area x channels x hidden_dim)",
            area * channels * h + h * bool(config.get("use_patch_bias", True)),
        ),
        ("class token and position embedding", h * bool(config.get("use_class_token", True)) + tokens * h),
        (f"{layers} transformer blocks (num_layers)", layers * block),
        ("final layer norm", 2 * h),
    ]


_BACKBONE_PARAMETERS: Mapping[str, Callable[[Mapping[str, Any]], list[tuple[str, int]]]] = {
    "BertBackbone": _bert,
    "GPT2Backbone": lambda config: _text_encoder(config, segments=False, pooler=False, final_norm=True),
    "RobertaBackbone": _encoder_only,
    "DistilBertBackbone": _encoder_only,
    "GemmaBackbone": _gemma,
    "LlamaBackbone": _llama,
    "MistralBackbone": _mistral,
    "QwenBackbone": _qwen,
    "ViTBackbone": _vit,
}


def backbone_parameters(class_name: str, config: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The parameters of a vetted backbone, part by part (embeddings first),
    from arguments that `autoinit.upload.hub_arguments.check_hub_arguments` accepted."""
    return _BACKBONE_PARAMETERS[class_name](config)


#: Layers a backbone builds besides its blocks, and per block (its sublayers
#: included: attention projections, norms, dropouts), rounded up over the
#: vetted architectures.
_BACKBONE_LAYERS = 25
_BLOCK_LAYERS = 16


def backbone_layer_count(config: Mapping[str, Any]) -> int:
    """Layers a backbone builds, nested ones included (an upper bound)."""
    return _BACKBONE_LAYERS + _BLOCK_LAYERS * _size(config, "num_layers")


@dataclass(frozen=True)
class BackboneActivations:
    """Per-example float counts of a backbone's tensors; the fields of
    `autoinit.upload.params.ActivationElements`."""

    inputs: int
    outputs: int
    live_peak: int
    total: int
    calls: int


@dataclass(frozen=True)
class _ActivationModel:
    """Coefficients of ``(S h, S f, heads S S, S S, S q, S k, n S h)`` (``q``:
    the query width ``heads x head_dim``; ``k``: the key width Gemma states,
    ``num_key_value_heads x head_dim``; ``n``: Gemma's optional post-norms) for
    the layer outputs before the blocks (``base``), in each block (``block``)
    and alive at once (``live``); layer calls before the blocks and per block."""

    calls: tuple[int, int]
    base: tuple[float, ...]
    block: tuple[float, ...]
    live: tuple[float, ...]


_ENCODER = _ActivationModel((5, 11), (5, 0, 0, 1), (8, 1, 0, 1), (3, 1))
_ACTIVATIONS: Mapping[str, _ActivationModel] = {
    "BertBackbone": _ActivationModel((8, 11), (7, 0, 0, 1), (8, 1, 0, 1), (0, 1, 0, 0, 4)),
    "RobertaBackbone": _ENCODER,
    "DistilBertBackbone": _ENCODER,
    "GPT2Backbone": _ActivationModel((5, 21), (5, 0, 0, 1), (13, 1, 3, 3), (0, 0, 2, 1, 4)),
    "GemmaBackbone": _ActivationModel((3, 37), (3, 0, 0, 1), (6, 2, 3.5, 3, 11.5, 6, 1.5), (2, 0, 3, 2)),
    "LlamaBackbone": _ActivationModel((2, 30), (2, 0, 0, 1), (14, 6, 4, 5), (0, 2.5, 2, 1, 2)),
    "MistralBackbone": _ActivationModel((2, 30), (2, 0, 0, 1), (14, 6, 4, 5), (0, 2.5, 2, 1, 2)),
    "QwenBackbone": _ActivationModel((2, 30), (2, 0, 0, 1), (14, 6, 4, 5), (0, 2.5, 2, 1, 2)),
    "ViTBackbone": _ActivationModel((3, 10), (6, 0, 0, 1), (8, 2), (2.5, 2)),
}


def backbone_activations(class_name: str, config: Mapping[str, Any]) -> BackboneActivations:
    """Per-example tensor sizes of a backbone as the probe walks it (an upper estimate)."""
    layers, h = config["num_layers"], config["hidden_dim"]
    heads = config.get("num_heads", config.get("num_query_heads", 1))
    f = config.get("intermediate_dim", config.get("mlp_dim", h))
    s = min(OPEN_LENGTH, config.get("max_sequence_length", OPEN_LENGTH))  # the probe's open length
    inputs = (3 if class_name == "BertBackbone" else 2) * s  # token ids, padding mask (, segment ids)
    if class_name == "ViTBackbone":
        _, _, s, inputs = _vit_geometry(config)  # the image's pixels; the patches (and class token)
    head = _size(config, "head_dim")
    q, k = max(h, heads * head), _size(config, "num_key_value_heads") * head
    norms = bool(config.get("use_post_ffw_norm")) + bool(config.get("use_post_attention_norm"))
    model = _ACTIVATIONS[class_name]

    def elements(coefficients: tuple[float, ...]) -> int:
        features = (s * h, s * f, heads * s * s, s * s, s * q, s * k, norms * s * h)
        return math.ceil(sum(c * x for c, x in zip(coefficients, features)))

    base = elements(model.base) + (inputs if class_name == "ViTBackbone" else 0)
    total = base + layers * elements(model.block)
    return BackboneActivations(
        inputs=inputs,
        outputs=s * h + h * (class_name == "BertBackbone"),  # sequence output (, pooled output)
        live_peak=min(total, elements(model.live)),
        total=total,
        calls=model.calls[0] + layers * (model.calls[1] + norms),
    )


# --- keras_hub layers inside an uploaded model -----------------------------------


def _last(shapes: list[Shape]) -> int | None:
    return shapes[0][-1] if shapes and shapes[0] else None


def _sequence(shape: Shape, axis: int) -> int:
    """The length a sequence axis has when the probe runs (open: `OPEN_LENGTH`)."""
    length = shape[axis] if -len(shape) <= axis < len(shape) else None
    return OPEN_LENGTH if length is None else length


def _covers(class_name: str, config: Mapping[str, Any], shapes: list[Shape], axis: int) -> None:
    """A learned position table must hold a row for every position of a fixed
    input. An open axis is fed the shortest table's length where that is under
    `OPEN_LENGTH` (``autoinit.keras_adapter.composite.open_length_of``), so any
    table covers it, and sizing it at `OPEN_LENGTH` over-estimates."""
    table = config.get("sequence_length")
    for shape in shapes[:1]:
        if not -len(shape) <= axis < len(shape) or shape[axis] is None:
            continue
        length = shape[axis]
        if isinstance(table, int) and table < length:
            raise ModelConfigError(
                f"keras_hub's {class_name} '{config.get('name', '?')}' has sequence_length={table}, but "
                f"its input has {length} positions; it needs at least {length}."
            )


def _transformer_encoder(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    width = _last(shapes)
    if width is None:
        return None
    return _encoder_block(width, config["intermediate_dim"], config["num_heads"])


def _widths(value: Any) -> int | None:
    return value[-1] if isinstance(value, list) and value and isinstance(value[-1], int) else None


def _transformer_decoder(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    """Self-attention block, plus cross-attention and its norm when the layer
    is built with an encoder sequence (in its config, or a second 3-D input)."""
    width = _last(shapes) or _widths(config.get("decoder_sequence_shape"))
    if width is None:
        return None
    heads, inner = config["num_heads"], config["intermediate_dim"]
    encoders = [w for w in [_widths(config.get("encoder_sequence_shape"))] if w is not None]
    encoders += [shape[-1] for shape in shapes[1:] if len(shape) >= 3 and shape[-1] is not None]
    cross = _attention(width, max(encoders), heads, width // heads) + 2 * width if encoders else 0
    return _encoder_block(width, inner, heads) + cross


def _token_and_position(config: Mapping[str, Any], shapes: list[Shape]) -> int:
    _covers("TokenAndPositionEmbedding", config, shapes, -1)
    tables = 1 if config.get("tie_weights", True) else 2
    return (tables * config["vocabulary_size"] + config["sequence_length"]) * config["embedding_dim"]


def _position(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    _covers("PositionEmbedding", config, shapes, -2)
    width = _last(shapes)
    return None if width is None else config["sequence_length"] * width


def _reversible(config: Mapping[str, Any], shapes: list[Shape]) -> int:
    return (1 if config.get("tie_weights", True) else 2) * config["input_dim"] * config["output_dim"]


#: ``class name -> rule(config, input shapes) -> parameters or None`` (None:
#: the input width is needed and unknown), as `autoinit.upload.param_rules.PARAMETER_RULES`.
LAYER_PARAMETER_RULES: Mapping[str, Callable[[Mapping[str, Any], list[Shape]], int | None]] = {
    "TransformerEncoder": _transformer_encoder,
    "TransformerDecoder": _transformer_decoder,
    "TokenAndPositionEmbedding": _token_and_position,
    "PositionEmbedding": _position,
    "SinePositionEncoding": lambda config, shapes: 0,
    "RotaryEmbedding": lambda config, shapes: 0,
    "ReversibleEmbedding": _reversible,
}


def _same(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    return [shapes[0] if shapes else None]


def _embedded(width_key: str) -> Callable[[Mapping[str, Any], list[Shape]], list[Shape | None]]:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
        return [(*shapes[0], config.get(width_key)) if shapes else None]

    return rule


#: ``class name -> rule(config, input shapes) -> output shapes``.
LAYER_SHAPE_RULES: Mapping[str, Callable[[Mapping[str, Any], list[Shape]], list[Shape | None]]] = {
    "TransformerEncoder": _same,
    "TransformerDecoder": _same,
    "TokenAndPositionEmbedding": _embedded("embedding_dim"),
    "PositionEmbedding": _same,
    "SinePositionEncoding": _same,
    "RotaryEmbedding": _same,
    "ReversibleEmbedding": _embedded("output_dim"),
}

#: Sublayers each composite builds (attention projections, norms, dense
#: layers, dropouts; a decoder's cross-attention counted in).
_INNER_LAYERS = {"TransformerEncoder": 13, "TransformerDecoder": 22, "TokenAndPositionEmbedding": 2}


def inner_layer_count(class_name: str) -> int:
    """Sublayers a vetted keras_hub layer builds (0 for a leaf)."""
    return _INNER_LAYERS.get(class_name, 0)


def composite_work(class_name: str, config: Mapping[str, Any], shapes: list[Shape]) -> tuple[int, int]:
    """(extra layer calls, elements of their outputs per example) that one call
    of a composite keras_hub layer makes inside (the probe walks them); (0, 0)
    for a leaf or unknown shapes."""
    if class_name not in _INNER_LAYERS or not shapes or shapes[0] is None:
        return 0, 0
    shape = shapes[0]
    if class_name == "TokenAndPositionEmbedding":
        width = config.get("embedding_dim")
        return 2, 3 * _sequence(shape, -1) * (width if isinstance(width, int) else 1)
    s, width = _sequence(shape, -2), shape[-1]
    if width is None:
        return 0, 0
    inner, heads = config["intermediate_dim"], config["num_heads"]
    if class_name == "TransformerEncoder":
        return 10, 8 * s * width + s * inner + s * s
    work = 13 * s * width + s * inner + 3 * heads * s * s + 3 * s * s
    others = [x for x in shapes[1:] if x is not None and len(x) >= 3]
    if others:  # cross-attention over the encoder's sequence
        work += 6 * s * width + 3 * heads * s * max(_sequence(x, -2) for x in others)
        return 28, work
    return 20, work
