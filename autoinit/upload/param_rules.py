"""Parameters of one layer, from its config and the shape(s) it is built
with: ``PARAMETER_RULES`` (class name -> rule) and the layers known to have
none (``WEIGHTLESS_LAYERS``), for the upload's parameter bound (``params``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from autoinit.upload.config_values import (
    Shape,
    as_count,
    as_counts,
    as_ints,
    axes_size,
    channels_axis,
    dim_of,
    first_shape,
    product_of,
)

__all__ = ["PARAMETER_RULES", "WEIGHTLESS_LAYERS", "ParamRule"]

WEIGHTLESS_LAYERS = frozenset(
    """Activation ReLU LeakyReLU ELU Softmax Dropout SpatialDropout1D
    SpatialDropout2D SpatialDropout3D GaussianDropout GaussianNoise AlphaDropout
    ActivityRegularization Masking Identity Rescaling UnitNormalization
    RandomFlip RandomRotation RandomZoom RandomTranslation RandomContrast
    RandomBrightness CenterCrop Resizing RandomCrop
    AveragePooling1D AveragePooling2D AveragePooling3D MaxPooling1D
    MaxPooling2D MaxPooling3D GlobalAveragePooling1D GlobalAveragePooling2D
    GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D
    GlobalMaxPooling3D Add Subtract Multiply Average Maximum Minimum
    Concatenate Dot Flatten Reshape Permute RepeatVector UpSampling1D
    UpSampling2D UpSampling3D Cropping1D Cropping2D Cropping3D ZeroPadding1D
    ZeroPadding2D ZeroPadding3D InputLayer""".split()
)

ParamRule = Callable[[Mapping[str, Any], list[Shape]], "int | None"]


def _dense(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    width, units = dim_of(first_shape(shapes), -1), as_count(config.get("units"))
    return None if width is None or units is None else (width + 1) * units


def _einsum_dense(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    """Kernel axes take their sizes from the input or the output, as Keras'
    ``_analyze_split_string`` resolves them; the bias is at most the output."""
    shape, equation = first_shape(shapes), config.get("equation")
    out = config.get("output_shape")
    out_dims = [out] if as_count(out) is not None else out if isinstance(out, list) else None
    match = _EINSUM.fullmatch(equation) if isinstance(equation, str) else None
    if shape is None or out_dims is None or match is None:
        return None
    input_spec, kernel_spec, output_spec = match.groups()
    sizes = _label_sizes(output_spec, (shape[0], *out_dims))
    sizes.update(_label_sizes(input_spec, shape))  # the input wins, as in Keras
    kernel = product_of([sizes.get(label) for label in kernel_spec])
    bias = product_of([as_count(d) or 1 for d in out_dims]) if config.get("bias_axes") else 0
    return None if kernel is None or bias is None else kernel + bias


_EINSUM = re.compile(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)")


def _label_sizes(spec: str, shape: tuple[Any, ...]) -> dict[str, int | None]:
    """Label -> dimension, aligned to the end when the spec starts with ``...``."""
    labels = spec.replace("...", "")
    dims = shape[len(shape) - len(labels) :] if spec.startswith("...") else shape[: len(labels)]
    return {label: as_count(dim) for label, dim in zip(labels, dims)}


def _embedding(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    rows, cols = as_count(config.get("input_dim")), as_count(config.get("output_dim"))
    return None if rows is None or cols is None else rows * cols


def _reversible_embedding(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    """The table, and an untied output projection of the same size."""
    table = _embedding(config, shapes)
    return None if table is None else table * (1 if config.get("tie_weights", True) else 2)


def _conv(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = dim_of(first_shape(shapes), channels_axis(config))
        kernel, filters = as_ints(config.get("kernel_size"), rank), as_count(config.get("filters"))
        if channels is None or kernel is None or filters is None:
            return None
        return math.prod(kernel) * channels * filters + filters  # groups only divide

    return rule


def _depthwise(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = dim_of(first_shape(shapes), channels_axis(config))
        kernel = as_ints(config.get("kernel_size"), rank)
        multiplier = as_count(config.get("depth_multiplier", 1))
        if channels is None or kernel is None or multiplier is None:
            return None
        return (math.prod(kernel) + 1) * channels * multiplier

    return rule


def _separable(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = dim_of(first_shape(shapes), channels_axis(config))
        kernel = as_ints(config.get("kernel_size"), rank)
        filters = as_count(config.get("filters"))
        multiplier = as_count(config.get("depth_multiplier", 1))
        if channels is None or kernel is None or filters is None or multiplier is None:
            return None
        return (math.prod(kernel) + filters) * channels * multiplier + filters

    return rule


def _recurrent(gates: int, biases: int = 1) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        width, units = dim_of(first_shape(shapes), -1), as_count(config.get("units"))
        if width is None or units is None:
            return None
        return gates * units * (width + units + biases)

    return rule


def _conv_lstm(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = dim_of(first_shape(shapes), channels_axis(config))
        kernel, filters = as_ints(config.get("kernel_size"), rank), as_count(config.get("filters"))
        if channels is None or kernel is None or filters is None:
            return None
        return 4 * filters * (math.prod(kernel) * (channels + filters) + 1)

    return rule


def _axis_weights(per_axis: int, extra: int = 0, default_axis: Any = -1) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        axis = config.get("axis", default_axis)
        size = 1 if axis is None or axis == [] else axes_size(first_shape(shapes), axis)
        return None if size is None else per_axis * size + extra

    return rule


def _group_normalization(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    size = axes_size(first_shape(shapes), config.get("axis", -1))
    return None if size is None else 2 * size


def _prelu(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    shape = first_shape(shapes)
    if shape is None:
        return None
    shared = config.get("shared_axes") or []
    shared = [shared] if isinstance(shared, int) else shared
    if not isinstance(shared, list):
        return None
    return product_of([d for axis, d in enumerate(shape) if axis and axis not in shared])


def _multi_head_attention(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    widths = [w for shape in shapes if (w := dim_of(shape, -1)) is not None]
    heads, key_dim = as_count(config.get("num_heads")), as_count(config.get("key_dim"))
    value_dim = as_count(config.get("value_dim")) if config.get("value_dim") is not None else key_dim
    if not widths or heads is None or key_dim is None or value_dim is None:
        return None
    width = max(widths)
    out = config.get("output_shape")
    out_dims = [width] if out is None else as_counts(out)
    out_width = None if out_dims is None else product_of(out_dims)
    if out_width is None:
        return None
    projections = heads * ((2 * key_dim + value_dim) * (width + 1))
    return projections + heads * value_dim * out_width + out_width


#: ``class name -> rule(config, input shapes) -> parameters or None``.
PARAMETER_RULES: dict[str, ParamRule] = {
    "Dense": _dense,
    "EinsumDense": _einsum_dense,
    "Embedding": _embedding,
    "ReversibleEmbedding": _reversible_embedding,
    "SimpleRNN": _recurrent(1), "SimpleRNNCell": _recurrent(1),
    "GRU": _recurrent(3, biases=2), "GRUCell": _recurrent(3, biases=2),  # reset_after
    "LSTM": _recurrent(4), "LSTMCell": _recurrent(4),
    "BatchNormalization": _axis_weights(4),
    "LayerNormalization": _axis_weights(2),
    "RMSNormalization": _axis_weights(1),
    "GroupNormalization": _group_normalization,
    "Normalization": _axis_weights(2, extra=1),
    "PReLU": _prelu,
    "MultiHeadAttention": _multi_head_attention,
    "Attention": lambda config, shapes: 2,
    "AdditiveAttention": lambda config, shapes: dim_of(first_shape(shapes), -1),
    "LayerScale": lambda config, shapes: as_count(config.get("projection_dim")),  # ConvNeXt's gamma
}  # fmt: skip
for _rank in (1, 2, 3):
    PARAMETER_RULES[f"Conv{_rank}D"] = _conv(_rank)
    PARAMETER_RULES[f"Conv{_rank}DTranspose"] = _conv(_rank)
    PARAMETER_RULES[f"ConvLSTM{_rank}D"] = _conv_lstm(_rank)
for _rank in (1, 2):
    PARAMETER_RULES[f"DepthwiseConv{_rank}D"] = _depthwise(_rank)
    PARAMETER_RULES[f"SeparableConv{_rank}D"] = _separable(_rank)
