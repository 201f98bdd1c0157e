"""Keras 2 -> Keras 3 argument changes, layer by layer.

Each rule says what happens to an argument Keras 3 renamed or removed:
dropped, renamed, kept only at its default, or a Keras 2 list of one item
turned into a scalar. The `autoinit.legacy` docstring lists them in words.
"""

from __future__ import annotations

from autoinit.errors import LegacyConfigError

__all__ = ["apply_argument_rules"]

_DROP = "drop"
_RENAME = "rename"
_DEFAULT_ONLY = "default-only"
_SINGLE_ITEM = "single-item"  # Keras 2 list of one -> Keras 3 scalar

_ANY_LAYER_RULES = {
    "batch_input_shape": (_DROP,),
    "batch_size": (_DROP,),
    "input_dtype": (_DROP,),
    "dynamic": (_DROP,),
}
_RNN_RULES = {"time_major": (_DEFAULT_ONLY, False), "implementation": (_DROP,)}
_GROUPS_ONE = {"groups": (_DEFAULT_ONLY, 1)}
_SEPARABLE_RULES = {
    **_GROUPS_ONE,
    "kernel_initializer": (_DROP,),
    "kernel_regularizer": (_DROP,),
    "kernel_constraint": (_DROP,),
}
_CONV_LSTM_RULES = {"time_major": (_DEFAULT_ONLY, False), "unroll": (_DEFAULT_ONLY, False)}
_ARGUMENT_RULES: dict[str, dict[str, tuple]] = {
    "InputLayer": {"batch_input_shape": (_RENAME, "batch_shape"), "input_dtype": (_DROP,)},
    "Embedding": {"input_length": (_DROP,)},
    "MultiHeadAttention": {
        "query_shape": (_DROP,),
        "key_shape": (_DROP,),
        "value_shape": (_DROP,),
        "softmax_robust_masking": (_DROP,),
    },
    "SimpleRNN": _RNN_RULES,
    "GRU": _RNN_RULES,
    "LSTM": _RNN_RULES,
    "ConvLSTM1D": _CONV_LSTM_RULES,
    "ConvLSTM2D": _CONV_LSTM_RULES,
    "ConvLSTM3D": _CONV_LSTM_RULES,
    "BatchNormalization": {
        "axis": (_SINGLE_ITEM,),
        "fused": (_DROP,),
        "virtual_batch_size": (_DROP,),
        "adjustment": (_DROP,),
    },
    "DepthwiseConv1D": _GROUPS_ONE,
    "DepthwiseConv2D": _GROUPS_ONE,
    "Conv1DTranspose": _GROUPS_ONE,
    "Conv2DTranspose": _GROUPS_ONE,
    "Conv3DTranspose": _GROUPS_ONE,
    "SeparableConv1D": _SEPARABLE_RULES,
    "SeparableConv2D": _SEPARABLE_RULES,
    "SpatialDropout1D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "SpatialDropout2D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "SpatialDropout3D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "LeakyReLU": {"alpha": (_RENAME, "negative_slope")},
    "Bidirectional": {"num_constants": (_DEFAULT_ONLY, 0)},
    # tf.keras 2 augmentation layers name their random generator; Keras 3
    # seeds its own (SeedGenerator) and refuses the argument.
    **{
        name: {"rng_type": (_DROP,)}
        for name in (
            "RandomFlip",
            "RandomRotation",
            "RandomZoom",
            "RandomTranslation",
            "RandomContrast",
            "RandomBrightness",
            "RandomCrop",
        )
    },  # fmt: skip
}


def apply_argument_rules(class_name: str, name: str, config: dict) -> None:
    """Rewrite the arguments of layer ``name`` (``class_name``) in place."""
    rules = dict(_ANY_LAYER_RULES) if class_name != "InputLayer" else {}
    rules.update(_ARGUMENT_RULES.get(class_name, {}))
    for argument, rule in rules.items():
        if argument not in config:
            continue
        value = config.pop(argument)
        if rule[0] == _RENAME:
            config[rule[1]] = value
        elif rule[0] == _SINGLE_ITEM:
            if isinstance(value, list) and len(value) != 1:
                raise LegacyConfigError(
                    f"Layer {name!r} ({class_name}) has {argument}={value!r}; "
                    f"Keras 3 expects a single {argument}."
                )
            config[argument] = value[0] if isinstance(value, list) else value
        elif rule[0] == _DEFAULT_ONLY and value != rule[1]:
            raise LegacyConfigError(
                f"Layer {name!r} ({class_name}) has {argument}={value!r}; "
                f"Keras 3 has no such argument, so only {argument}="
                f"{rule[1]!r} can be converted."
            )
