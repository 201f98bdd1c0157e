"""The arguments each vetted keras_hub class may be given on upload.

A keras_hub backbone's config is its constructor's arguments
(``BertBackbone(vocabulary_size=..., num_layers=..., ...)``), and
``from_config`` passes them all on: an argument the constructor does not know,
or a string where a size belongs, would reach keras_hub unchecked. So every
vetted class (`autoinit.keras_facts.HUB_BACKBONES`, ``HUB_UPLOAD_LAYERS``)
has a table here of the arguments it takes, each with its kind: a size (a
positive integer), a rate, a flag, one of a few fixed strings, a shape. An
argument not in the table is refused, and so is a value of the wrong kind;
no argument takes free text (a ``preset``, a path, a URL has nowhere to go).
Initializers, activations and dtype policies are objects the walker checks
against the allow-list like everywhere else.

Pure standard library: it runs in the API process.

Example:
    >>> check_hub_arguments("BertBackbone", {"vocabulary_size": 1000, "num_layers": 2,
    ...     "num_heads": 4, "hidden_dim": 64, "intermediate_dim": 128}, ("config",), None)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autoinit import keras_facts
from autoinit.errors import ModelConfigError, UnsafeConfigError
from autoinit.upload.paths import Holder, Path, short
from autoinit.upload.paths import where as _where

__all__ = ["HUB_ARGUMENTS", "MAX_SIZE", "OPEN_LENGTH", "REQUIRED", "check_hub_arguments", "hub_refusal"]

#: The sequence length the probe feeds where a model leaves it open (``None``):
#: ``autoinit.keras_adapter.composite.OPEN_DIM``, which imports Keras and so
#: cannot be imported here (a test keeps the two equal).
OPEN_LENGTH = 32

#: Largest size any argument may state: Keras and the backends index with int32.
MAX_SIZE = 2**31 - 1

#: Dtype policy names an upload may give (``dtype="bfloat16"``, or inside a ``DTypePolicy``).
DTYPE_NAMES = frozenset({"float16", "float32", "float64", "bfloat16", "mixed_float16", "mixed_bfloat16"})

_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


@dataclass(frozen=True)
class Kind:
    """What one argument must be: ``expected`` says it in a message."""

    expected: str
    accepts: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_size(value: Any) -> bool:
    return _is_int(value) and 1 <= value <= MAX_SIZE


def _optional(kind: Kind) -> Kind:
    return Kind(f"{kind.expected}, or null", lambda v: v is None or kind.accepts(v))


def _choice(*values: str | None) -> Kind:
    shown = ", ".join("null" if v is None else repr(v) for v in values)
    return Kind(f"one of {shown}", lambda v: v in values)


def _is_dtype(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in DTYPE_NAMES
    if isinstance(value, Mapping):  # its class is the walker's to check
        inner = value.get("config")
        return (
            value.get("class_name") in keras_facts.DTYPE_POLICY_CLASSES
            and isinstance(inner, Mapping)
            and inner.get("name") in DTYPE_NAMES
        )
    return False


def _is_keras_object(value: Any) -> bool:
    """A name (``"glorot_uniform"``) or a serialized object; the walker checks which."""
    return isinstance(value, (str, Mapping))


SIZE = Kind(f"a positive integer (at most {MAX_SIZE:,})", _is_size)
RATE = Kind("a number from 0 up to (not including) 1", lambda v: _is_number(v) and 0 <= v < 1)
POSITIVE = Kind("a positive finite number", lambda v: _is_number(v) and v > 0)
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
AXIS = Kind("an axis (an integer from -8 to 7)", lambda v: _is_int(v) and -8 <= v <= 7)
NAME = Kind(
    "a name of letters, digits, '_', '.' or '-' (at most 128)",
    lambda v: isinstance(v, str) and _NAME.fullmatch(v) is not None,
)
DTYPE = Kind(f"a dtype policy ({', '.join(sorted(DTYPE_NAMES))}), or null", _is_dtype)
KERAS_OBJECT = Kind("a Keras name such as 'glorot_uniform', or a serialized Keras object", _is_keras_object)
ACTIVATION = Kind("an activation name such as 'relu'", _is_keras_object)
IMAGE_SHAPE = Kind(
    "a list of 3 positive integers (height, width, channels)",
    lambda v: isinstance(v, list) and len(v) == 3 and all(_is_size(d) for d in v),
)
PATCH_SIZE = Kind(
    "a positive integer or a list of 2",
    lambda v: _is_size(v) or (isinstance(v, list) and len(v) == 2 and all(_is_size(d) for d in v)),
)
SEQUENCE_SHAPE = Kind(
    "a shape (a list of 2 to 8 positive integers or nulls), or null",
    lambda v: (
        v is None or (isinstance(v, list) and 2 <= len(v) <= 8 and all(d is None or _is_size(d) for d in v))
    ),
)
ABSENT = Kind("null", lambda v: v is None)

#: Every keras_hub layer and backbone takes these (``keras.layers.Layer``'s own).
_COMMON: dict[str, Kind] = {"name": NAME, "trainable": FLAG, "dtype": DTYPE}

_TEXT_ENCODER = {
    "vocabulary_size": SIZE,
    "num_layers": SIZE,
    "num_heads": SIZE,
    "hidden_dim": SIZE,
    "intermediate_dim": SIZE,
    "dropout": RATE,
    "max_sequence_length": SIZE,
}
_DECODER = {  # Gemma, Llama and the like: grouped-query attention, RMS norms, a gated feed-forward
    "vocabulary_size": SIZE,
    "num_layers": SIZE,
    "num_query_heads": SIZE,
    "num_key_value_heads": SIZE,
    "hidden_dim": SIZE,
    "intermediate_dim": SIZE,
    "layer_norm_epsilon": POSITIVE,
    "dropout": RATE,
}
_TRANSFORMER_LAYER = {
    "intermediate_dim": SIZE,
    "num_heads": SIZE,
    "dropout": RATE,
    "activation": ACTIVATION,
    "layer_norm_epsilon": POSITIVE,
    "kernel_initializer": KERAS_OBJECT,
    "bias_initializer": KERAS_OBJECT,
    "normalize_first": FLAG,
}

#: ``class name -> argument -> kind``, for every class of
#: ``keras_facts.HUB_BACKBONES`` and ``keras_facts.HUB_UPLOAD_LAYERS``.
HUB_ARGUMENTS: Mapping[str, Mapping[str, Kind]] = {
    # Backbones
    "BertBackbone": {**_TEXT_ENCODER, "num_segments": SIZE},
    "GPT2Backbone": _TEXT_ENCODER,
    "RobertaBackbone": _TEXT_ENCODER,
    "DistilBertBackbone": _TEXT_ENCODER,
    "GemmaBackbone": {
        **_DECODER,
        "head_dim": SIZE,
        "query_head_dim_normalize": FLAG,
        "use_post_ffw_norm": FLAG,
        "use_post_attention_norm": FLAG,
        "attention_logit_soft_cap": _optional(POSITIVE),
        "final_logit_soft_cap": _optional(POSITIVE),
        "use_sliding_window_attention": FLAG,
        "sliding_window_size": SIZE,
    },
    "LlamaBackbone": {
        **_DECODER,
        "rope_max_wavelength": POSITIVE,
        "rope_position_scaling_factor": POSITIVE,
        "rope_frequency_adjustment_factor": _optional(POSITIVE),
        "rope_low_freq_factor": _optional(POSITIVE),
        "rope_high_freq_factor": _optional(POSITIVE),
        "rope_pretraining_sequence_length": _optional(SIZE),
        "tie_word_embeddings": FLAG,
    },
    "MistralBackbone": {
        **_DECODER,
        "rope_max_wavelength": POSITIVE,
        "rope_scaling_factor": POSITIVE,
        "sliding_window": SIZE,
        "head_dim": _optional(SIZE),
    },
    "QwenBackbone": {
        **_DECODER,
        "rope_max_wavelength": POSITIVE,
        "rope_scaling_factor": POSITIVE,
        "tie_word_embeddings": FLAG,
        "use_sliding_window_attention": FLAG,
        "sliding_window_size": SIZE,
    },
    "ViTBackbone": {
        "image_shape": IMAGE_SHAPE,
        "patch_size": PATCH_SIZE,
        "num_layers": SIZE,
        "num_heads": SIZE,
        "hidden_dim": SIZE,
        "mlp_dim": SIZE,
        "dropout_rate": RATE,
        "attention_dropout": RATE,
        "layer_norm_epsilon": POSITIVE,
        "use_mha_bias": FLAG,
        "use_mlp_bias": FLAG,
        "use_class_token": FLAG,
        "use_patch_bias": FLAG,
        "data_format": _choice(None, "channels_last", "channels_first"),
    },
    # Layers
    "TransformerEncoder": _TRANSFORMER_LAYER,
    "TransformerDecoder": {
        **_TRANSFORMER_LAYER,
        # Written by get_config once built; the constructor builds with them.
        "decoder_sequence_shape": SEQUENCE_SHAPE,
        "encoder_sequence_shape": SEQUENCE_SHAPE,
    },
    "TokenAndPositionEmbedding": {
        "vocabulary_size": SIZE,
        "sequence_length": SIZE,
        "embedding_dim": SIZE,
        "tie_weights": FLAG,
        "embeddings_initializer": KERAS_OBJECT,
        "mask_zero": FLAG,
    },
    "PositionEmbedding": {"sequence_length": SIZE, "initializer": KERAS_OBJECT},
    "SinePositionEncoding": {"max_wavelength": POSITIVE},
    "RotaryEmbedding": {
        "max_wavelength": POSITIVE,
        "scaling_factor": POSITIVE,
        "rope_type": _choice("linear", "dynamic", "yarn"),
        "beta_fast": POSITIVE,
        "beta_slow": POSITIVE,
        "original_max_position_embeddings": SIZE,
        "truncate": FLAG,
        "sequence_axis": AXIS,
        "feature_axis": AXIS,
        "denominator_dim": _optional(SIZE),
    },
    "ReversibleEmbedding": {
        "input_dim": SIZE,
        "output_dim": SIZE,
        "tie_weights": FLAG,
        "embeddings_initializer": KERAS_OBJECT,
        "embeddings_regularizer": _optional(KERAS_OBJECT),
        "activity_regularizer": _optional(KERAS_OBJECT),
        "embeddings_constraint": _optional(KERAS_OBJECT),
        "mask_zero": FLAG,
        "reverse_dtype": DTYPE,
        "logit_soft_cap": _optional(POSITIVE),
        "quantization_config": ABSENT,  # quantized layers are not initialized
    },
}

_DECODER_REQUIRED = frozenset(
    {
        "vocabulary_size",
        "num_layers",
        "num_query_heads",
        "num_key_value_heads",
        "hidden_dim",
        "intermediate_dim",
    }
)

#: Arguments a class cannot be built without (its constructor's required ones).
REQUIRED: Mapping[str, frozenset[str]] = {
    "BertBackbone": frozenset(
        {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim"}
    ),
    "GPT2Backbone": frozenset(
        {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim"}
    ),
    "RobertaBackbone": frozenset(
        {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim"}
    ),
    "DistilBertBackbone": frozenset(
        {"vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim"}
    ),
    "GemmaBackbone": _DECODER_REQUIRED | {"head_dim"},
    "LlamaBackbone": _DECODER_REQUIRED,
    "MistralBackbone": _DECODER_REQUIRED,
    "QwenBackbone": _DECODER_REQUIRED,
    "ViTBackbone": frozenset(
        {"image_shape", "patch_size", "num_layers", "num_heads", "hidden_dim", "mlp_dim"}
    ),
    "TransformerEncoder": frozenset({"intermediate_dim", "num_heads"}),
    "TransformerDecoder": frozenset({"intermediate_dim", "num_heads"}),
    "TokenAndPositionEmbedding": frozenset({"vocabulary_size", "sequence_length", "embedding_dim"}),
    "PositionEmbedding": frozenset({"sequence_length"}),
    "SinePositionEncoding": frozenset(),
    "RotaryEmbedding": frozenset(),
    "ReversibleEmbedding": frozenset({"input_dim", "output_dim"}),
}


def check_hub_arguments(class_name: str, config: Any, path: Path, layer: Holder) -> None:
    """Refuse a vetted keras_hub class's ``config`` unless every argument is
    one the class takes, of its kind, and the required ones are there.

    Raises:
        UnsafeConfigError: an argument the class does not take on upload.
        ModelConfigError: a missing argument, a value of the wrong kind, or
            arguments that cannot build together; names the argument, what
            was received, the JSON path and the layer.
    """
    kinds = HUB_ARGUMENTS[class_name]
    if not isinstance(config, Mapping):
        raise ModelConfigError(
            f"Expected the config of keras_hub's {class_name} to be a JSON object. "
            f"Received: {short(config)} {_where(path, layer)}."
        )
    for name, value in config.items():
        kind = kinds.get(name) or _COMMON.get(name)
        if kind is None:
            raise UnsafeConfigError(
                f"Argument {name!r} is not one keras_hub's {class_name} takes on upload "
                f"(it takes {', '.join(sorted({*kinds, *_COMMON}))}); refused "
                f"{_where(path + (name,), layer)}."
            )
        if not kind.accepts(value):
            raise ModelConfigError(
                f"Expected {name!r} of {class_name} to be {kind.expected}. Received: {short(value)} "
                f"{_where(path + (name,), layer)}."
            )
    missing = sorted(REQUIRED[class_name] - set(config))
    if missing:
        raise ModelConfigError(
            f"keras_hub's {class_name} needs {', '.join(map(repr, missing))}; the config does not "
            f"state {'it' if len(missing) == 1 else 'them'} {_where(path, layer)}."
        )
    _check_together(class_name, config, path, layer)


def _check_together(class_name: str, config: Mapping[str, Any], path: Path, layer: Holder) -> None:
    """Arguments valid alone that keras_hub cannot build (or the probe cannot feed) together."""

    def refuse(name: str, why: str) -> None:
        raise ModelConfigError(
            f"{class_name}'s {name}={short(config[name])}: {why} {_where(path + (name,), layer)}."
        )

    heads = config.get("num_heads", config.get("num_query_heads"))
    # Gemma states its heads' width (head_dim); the others split hidden_dim between heads.
    if (
        class_name != "GemmaBackbone"
        and "hidden_dim" in config
        and heads is not None
        and heads > config["hidden_dim"]
    ):
        name = "num_heads" if "num_heads" in config else "num_query_heads"
        refuse(
            name,
            f"each head gets hidden_dim // {name} features, so it can be at most hidden_dim ({config['hidden_dim']})",
        )
    kv = config.get("num_key_value_heads")
    if kv is not None and heads % kv:
        refuse("num_key_value_heads", f"it must divide num_query_heads ({heads})")
    if class_name == "ViTBackbone":
        image, patch = config["image_shape"], config["patch_size"]
        patch = [patch, patch] if _is_int(patch) else patch
        spatial = image[1:] if config.get("data_format") == "channels_first" else image[:2]
        for size, step in zip(spatial, patch):
            if size % step:
                refuse("patch_size", f"the image's height and width ({spatial}) must be multiples of it")


_TOKENIZER = "tokenizers load their vocabulary from files"
_PREPROCESSOR = "preprocessors hold tokenizers or converters that load files"
_TASK = "tasks hold a preprocessor next to their backbone; upload the backbone's config instead"


def hub_refusal(class_name: str) -> str:
    """Why a keras_hub class that is not vetted is refused, in a few words."""
    if class_name.endswith("Tokenizer"):
        return _TOKENIZER
    if class_name.endswith(("Preprocessor", "Converter", "Packer")):
        return _PREPROCESSOR
    if class_name.endswith(
        (
            "Classifier",
            "CausalLM",
            "MaskedLM",
            "Seq2SeqLM",
            "Detector",
            "Segmenter",
            "ImageToImage",
            "TextToImage",
        )
    ):
        return _TASK
    return "it is not on the list of keras_hub classes vetted for uploads"
