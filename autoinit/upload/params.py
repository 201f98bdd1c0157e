"""An upper bound on a model's parameters, from the shapes its config states.

Keras creates a layer's weights from the input shape it is built with: the
``build_config`` written into the config, or the shape that reaches the layer
through the graph from the model's inputs (``InputLayer.batch_shape``,
``Sequential.build_input_shape``). `parameter_bound` follows both: it
propagates shapes through the graph for the common layer families, counts
each weighted layer's parameters for every shape it may be built with, and
keeps the largest. Dimensions are upper bounds (a ``valid`` convolution is
counted as ``same``), so the total is never below what Keras builds.

Where a weighted layer's input width can be found neither way, the config is
refused: a config without input shapes cannot be checked, and the worker
must never build what the API would have refused.

Example:
    >>> parameter_bound({"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 8]}},
    ...     {"class_name": "Dense", "config": {"units": 4}}]}})
    36
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from autoinit.errors import ParameterBoundError
from autoinit.keras_facts import MODEL_CLASSES, is_hub_backbone, is_hub_layer
from autoinit.upload import hub_sizes
from autoinit.upload.hub_arguments import check_hub_arguments
from autoinit.upload.structure import format_path

__all__ = [
    "PARAMETER_RULES",
    "WEIGHTLESS_LAYERS",
    "WRAPPER_LAYERS",
    "ActivationElements",
    "activation_elements",
    "parameter_bound",
]

Shape = tuple[int | None, ...]  # batch axis first; None: unknown
_Path = tuple[str | int, ...]

#: Deepest nesting of models in models (and wrappers) followed.
_MAX_NESTING = 32

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


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _shape(value: Any) -> Shape | None:
    """A shape from a config list (``[null, 32, 3]``), else None."""
    if not isinstance(value, list) or not value or len(value) > 16:
        return None
    if not all(item is None or _count(item) is not None for item in value):
        return None
    return tuple(value)


def _shapes(value: Any) -> list[Shape]:
    """Every shape in a build_config value: a shape, a list or a dict of them."""
    single = _shape(value)
    if single is not None:
        return [single]
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [shape for item in items if (shape := _shape(item)) is not None]


def _counts(value: Any) -> list[int] | None:
    """``3`` or ``[3, 4]`` as a list of counts, else None."""
    values = [value] if not isinstance(value, list) else value
    return values if all(_count(v) is not None for v in values) else None


def _clean(shape: Any) -> Shape | None:
    """An output shape with anything but a count replaced by None."""
    if not isinstance(shape, tuple):
        return None
    return tuple(d if _count(d) is not None else None for d in shape)


def _ints(value: Any, rank: int) -> list[int] | None:
    """``kernel_size=3`` or ``[3, 3]`` as a list of ``rank`` ints."""
    if _count(value) is not None:
        return [value] * rank
    if isinstance(value, list) and len(value) == rank and all(_count(v) is not None for v in value):
        return list(value)
    return None


def _channels_axis(config: Mapping[str, Any]) -> int:
    return 1 if config.get("data_format") == "channels_first" else -1


def _dim(shape: Shape | None, axis: int) -> int | None:
    if shape is None or not -len(shape) <= axis < len(shape):
        return None
    return shape[axis]


def _product(values: list[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(values)  # type: ignore[arg-type]


def _axes_size(shape: Shape | None, axis: Any) -> int | None:
    """Product of the dimensions ``axis`` (an int or a list) names."""
    axes = [axis] if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if shape is None or not isinstance(axes, list) or not axes:
        return None
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        return None
    return _product([_dim(shape, a) for a in axes])


# --- Parameters of one layer, given the shape(s) it is built with -------------

ParamRule = Callable[[Mapping[str, Any], list[Shape]], "int | None"]


def _first(shapes: list[Shape]) -> Shape | None:
    return shapes[0] if shapes else None


def _dense(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    width, units = _dim(_first(shapes), -1), _count(config.get("units"))
    return None if width is None or units is None else (width + 1) * units


def _einsum_dense(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    """Kernel axes take their sizes from the input or the output, as Keras'
    ``_analyze_split_string`` resolves them; the bias is at most the output."""
    shape, equation = _first(shapes), config.get("equation")
    out = config.get("output_shape")
    out_dims = [out] if _count(out) is not None else out if isinstance(out, list) else None
    match = _EINSUM.fullmatch(equation) if isinstance(equation, str) else None
    if shape is None or out_dims is None or match is None:
        return None
    input_spec, kernel_spec, output_spec = match.groups()
    sizes = _label_sizes(output_spec, (shape[0], *out_dims))
    sizes.update(_label_sizes(input_spec, shape))  # the input wins, as in Keras
    kernel = _product([sizes.get(label) for label in kernel_spec])
    bias = _product([_count(d) or 1 for d in out_dims]) if config.get("bias_axes") else 0
    return None if kernel is None or bias is None else kernel + bias


_EINSUM = re.compile(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)")


def _label_sizes(spec: str, shape: tuple[Any, ...]) -> dict[str, int | None]:
    """Label -> dimension, aligned to the end when the spec starts with ``...``."""
    labels = spec.replace("...", "")
    dims = shape[len(shape) - len(labels) :] if spec.startswith("...") else shape[: len(labels)]
    return {label: _count(dim) for label, dim in zip(labels, dims)}


def _embedding(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    rows, cols = _count(config.get("input_dim")), _count(config.get("output_dim"))
    return None if rows is None or cols is None else rows * cols


def _reversible_embedding(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    """The table, and an untied output projection of the same size."""
    table = _embedding(config, shapes)
    return None if table is None else table * (1 if config.get("tie_weights", True) else 2)


def _conv(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = _dim(_first(shapes), _channels_axis(config))
        kernel, filters = _ints(config.get("kernel_size"), rank), _count(config.get("filters"))
        if channels is None or kernel is None or filters is None:
            return None
        return math.prod(kernel) * channels * filters + filters  # groups only divide

    return rule


def _depthwise(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = _dim(_first(shapes), _channels_axis(config))
        kernel = _ints(config.get("kernel_size"), rank)
        multiplier = _count(config.get("depth_multiplier", 1))
        if channels is None or kernel is None or multiplier is None:
            return None
        return (math.prod(kernel) + 1) * channels * multiplier

    return rule


def _separable(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = _dim(_first(shapes), _channels_axis(config))
        kernel = _ints(config.get("kernel_size"), rank)
        filters = _count(config.get("filters"))
        multiplier = _count(config.get("depth_multiplier", 1))
        if channels is None or kernel is None or filters is None or multiplier is None:
            return None
        return (math.prod(kernel) + filters) * channels * multiplier + filters

    return rule


def _recurrent(gates: int, biases: int = 1) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        width, units = _dim(_first(shapes), -1), _count(config.get("units"))
        if width is None or units is None:
            return None
        return gates * units * (width + units + biases)

    return rule


def _conv_lstm(rank: int) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        channels = _dim(_first(shapes), _channels_axis(config))
        kernel, filters = _ints(config.get("kernel_size"), rank), _count(config.get("filters"))
        if channels is None or kernel is None or filters is None:
            return None
        return 4 * filters * (math.prod(kernel) * (channels + filters) + 1)

    return rule


def _axis_weights(per_axis: int, extra: int = 0, default_axis: Any = -1) -> ParamRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
        axis = config.get("axis", default_axis)
        size = 1 if axis is None or axis == [] else _axes_size(_first(shapes), axis)
        return None if size is None else per_axis * size + extra

    return rule


def _group_normalization(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    size = _axes_size(_first(shapes), config.get("axis", -1))
    return None if size is None else 2 * size


def _prelu(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    shape = _first(shapes)
    if shape is None:
        return None
    shared = config.get("shared_axes") or []
    shared = [shared] if isinstance(shared, int) else shared
    if not isinstance(shared, list):
        return None
    return _product([d for axis, d in enumerate(shape) if axis and axis not in shared])


def _multi_head_attention(config: Mapping[str, Any], shapes: list[Shape]) -> int | None:
    widths = [w for shape in shapes if (w := _dim(shape, -1)) is not None]
    heads, key_dim = _count(config.get("num_heads")), _count(config.get("key_dim"))
    value_dim = _count(config.get("value_dim")) if config.get("value_dim") is not None else key_dim
    if not widths or heads is None or key_dim is None or value_dim is None:
        return None
    width = max(widths)
    out = config.get("output_shape")
    out_dims = [width] if out is None else _counts(out)
    out_width = None if out_dims is None else _product(out_dims)
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
    "AdditiveAttention": lambda config, shapes: _dim(_first(shapes), -1),
    "LayerScale": lambda config, shapes: _count(config.get("projection_dim")),  # ConvNeXt's gamma
}  # fmt: skip
for _rank in (1, 2, 3):
    PARAMETER_RULES[f"Conv{_rank}D"] = _conv(_rank)
    PARAMETER_RULES[f"Conv{_rank}DTranspose"] = _conv(_rank)
    PARAMETER_RULES[f"ConvLSTM{_rank}D"] = _conv_lstm(_rank)
for _rank in (1, 2):
    PARAMETER_RULES[f"DepthwiseConv{_rank}D"] = _depthwise(_rank)
    PARAMETER_RULES[f"SeparableConv{_rank}D"] = _separable(_rank)


# --- Output shapes, as upper bounds ------------------------------------------


def _spatial_axes(shape: Shape, config: Mapping[str, Any]) -> range:
    return range(2, len(shape)) if config.get("data_format") == "channels_first" else range(1, len(shape) - 1)


def _with(shape: Shape, axis: int, value: int | None) -> Shape:
    out = list(shape)
    out[axis] = value
    return tuple(out)


def _strided(shape: Shape, config: Mapping[str, Any], window_key: str, transposed: bool = False) -> Shape:
    axes = _spatial_axes(shape, config)
    window = _ints(config.get(window_key), len(axes)) or [1] * len(axes)
    strides = _ints(config.get("strides"), len(axes))
    if strides is None:  # pooling: strides default to the window
        strides = window if window_key == "pool_size" else [1] * len(axes)
    dilation = _ints(config.get("dilation_rate", 1), len(axes)) or [1] * len(axes)
    out = list(shape)
    for index, axis in enumerate(axes):
        n = shape[axis]
        if n is None:
            continue
        s, k, d = max(strides[index], 1), window[index], dilation[index]
        out[axis] = max(n * s, (n - 1) * s + d * (k - 1) + 1) + s if transposed else -(-n // s)
    return tuple(out)


def _same(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    return [_first(shapes)]


def _broadcast(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    if not shapes:
        return [None]
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + s for s in shapes]
    out = []
    for dims in zip(*padded):
        out.append(None if any(d is None for d in dims) else max(dims))  # type: ignore[type-var]
    return [tuple(out)]


def _concatenate(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    axis = config.get("axis", -1)
    if not shapes or not isinstance(axis, int) or len({len(s) for s in shapes}) != 1:
        return [None]
    merged = list(_broadcast(config, shapes)[0])  # type: ignore[arg-type]
    if not -len(merged) <= axis < len(merged):
        return [None]
    widths = [s[axis] for s in shapes]
    merged[axis] = None if any(w is None for w in widths) else sum(widths)  # type: ignore[arg-type]
    return [tuple(merged)]


def _units_output(
    config: Mapping[str, Any], shape: Shape, units: int | None, states: int = 1
) -> list[Shape | None]:
    time = (shape[1],) if len(shape) > 2 else ()
    main: Shape = (shape[0], *time, units) if config.get("return_sequences") else (shape[0], units)
    return [main, *[(shape[0], units)] * states] if config.get("return_state") else [main]


ShapeRule = Callable[[Mapping[str, Any], list[Shape]], list["Shape | None"]]


def _shape_rules() -> dict[str, ShapeRule]:
    rules: dict[str, ShapeRule] = {}
    for name in WEIGHTLESS_LAYERS | {
        "BatchNormalization",
        "LayerNormalization",
        "RMSNormalization",
        "GroupNormalization",
        "Normalization",
        "PReLU",
        "LayerScale",
    }:
        rules[name] = _same
    for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        rules[name] = _broadcast
    rules["Concatenate"] = _concatenate

    def last(value_key: str) -> ShapeRule:
        def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
            shape = _first(shapes)
            return [None if shape is None else _with(shape, -1, _count(config.get(value_key)))]

        return rule

    rules["Dense"] = last("units")

    def channels(value_key: str | None, window_key: str, transposed: bool = False) -> ShapeRule:
        def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
            shape = _first(shapes)
            if shape is None:
                return [None]
            out = _strided(shape, config, window_key, transposed)
            axis = _channels_axis(config)
            if value_key == "depth_multiplier":
                c, m = out[axis], _count(config.get("depth_multiplier", 1))
                return [_with(out, axis, None if c is None or m is None else c * m)]
            if value_key is not None:
                out = _with(out, axis, _count(config.get(value_key)))
            return [out]

        return rule

    for rank in (1, 2, 3):
        rules[f"Conv{rank}D"] = channels("filters", "kernel_size")
        rules[f"Conv{rank}DTranspose"] = channels("filters", "kernel_size", transposed=True)
        rules[f"AveragePooling{rank}D"] = channels(None, "pool_size")
        rules[f"MaxPooling{rank}D"] = channels(None, "pool_size")
        for kind in ("Average", "Max"):
            rules[f"Global{kind}Pooling{rank}D"] = _global_pooling
        rules[f"UpSampling{rank}D"] = _resample("size", lambda n, k: n * k)
        rules[f"ZeroPadding{rank}D"] = _resample("padding", lambda n, k: n + k, total=True)
        rules[f"Cropping{rank}D"] = _resample("cropping", lambda n, k: max(n - k, 0), total=True)
    for rank in (1, 2):
        rules[f"DepthwiseConv{rank}D"] = channels("depth_multiplier", "kernel_size")
        rules[f"SeparableConv{rank}D"] = channels("filters", "kernel_size")
    rules["Embedding"] = rules["ReversibleEmbedding"] = lambda config, shapes: [
        None if not shapes else (*shapes[0], _count(config.get("output_dim")))
    ]
    rules["Flatten"] = lambda config, shapes: [
        None if not shapes else (shapes[0][0], _product(list(shapes[0][1:])))
    ]
    rules["Reshape"] = _reshape
    rules["Permute"] = _permute
    rules["RepeatVector"] = lambda config, shapes: [
        None if not shapes else (shapes[0][0], _count(config.get("n")), *shapes[0][1:])
    ]
    for name in ("Resizing", "CenterCrop", "RandomCrop"):
        rules[name] = _resized
    rules["EinsumDense"] = _einsum_output
    rules["MultiHeadAttention"] = _attention_output
    for name in ("SimpleRNN", "GRU", "LSTM"):
        rules[name] = _rnn_output(name)
    return rules


def _global_pooling(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    shape = _first(shapes)
    if shape is None:
        return [None]
    axis = _channels_axis(config)
    if config.get("keepdims"):
        return [tuple(d if i in (0, axis % len(shape)) else 1 for i, d in enumerate(shape))]
    return [(shape[0], shape[axis])]


def _resample(key: str, combine: Callable[[int, int], int], total: bool = False) -> ShapeRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
        shape = _first(shapes)
        if shape is None:
            return [None]
        axes = list(_spatial_axes(shape, config))
        value = config.get(key, 2 if key == "size" else 1)
        amounts: list[int] = []
        for index in range(len(axes)):
            item = value[index] if isinstance(value, list) and index < len(value) else value
            if isinstance(item, list):
                item = sum(v for v in item if _count(v) is not None)
            elif total and _count(item) is not None:
                item = 2 * item
            amounts.append(item if _count(item) is not None else 0)
        out = list(shape)
        for axis, amount in zip(axes, amounts):
            if out[axis] is not None:
                out[axis] = combine(out[axis], amount)  # type: ignore[arg-type]
        return [tuple(out)]

    return rule


def _resized(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    """Resizing and crops: the spatial size becomes ``height`` x ``width``."""
    shape = _first(shapes)
    if shape is None or len(shape) < 3:
        return [None]
    axes = list(_spatial_axes(shape, config))[-2:]
    out = list(shape)
    for axis, key in zip(axes, ("height", "width")):
        out[axis] = _count(config.get(key))
    return [tuple(out)]


def _reshape(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    target = config.get("target_shape")
    shape = _first(shapes)
    if shape is None or not isinstance(target, list) or not all(t == -1 or _count(t) for t in target):
        return [None]
    if -1 in target:
        total = _product(list(shape[1:]))
        known = _product([t for t in target if t != -1])
        fill = None if total is None or not known else total // known
        target = [fill if t == -1 else t for t in target]
    return [(shape[0], *target)]


def _permute(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    dims, shape = config.get("dims"), _first(shapes)
    if shape is None or _counts(dims) is None or sorted(dims) != list(range(1, len(shape))):
        return [None]
    return [(shape[0], *(shape[d] for d in dims))]


def _einsum_output(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    out, shape = config.get("output_shape"), _first(shapes)
    dims = [out] if _count(out) is not None else out if isinstance(out, list) else None
    if shape is None or dims is None:
        return [None]
    return [(shape[0], *(d if _count(d) is not None else None for d in dims))]


def _attention_output(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    query = _first(shapes)
    if query is None:
        return [None]
    out = config.get("output_shape")
    if _count(out) is not None:
        return [_with(query, -1, out)]
    if isinstance(out, list):
        return [(*query[:-1], *out)]
    return [query]


def _rnn_output(class_name: str) -> ShapeRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
        shape = _first(shapes)
        if shape is None:
            return [None]
        states = 2 if class_name == "LSTM" else 1
        return _units_output(config, shape, _count(config.get("units")), states)

    return rule


_SHAPE_RULES = _shape_rules()


# --- Walking models ------------------------------------------------------------


def parameter_bound(config: Mapping[str, Any], *, limit: int | None = None) -> int:
    """An upper bound on the parameters Keras builds for a model config.

    Args:
        config: a model config whose structure `check_model_structure`
            accepted (Keras 3, or tf.keras 2 entries without ``module``).
        limit: refuse as soon as the running total exceeds it.

    Raises:
        ModelConfigError: a weighted layer whose input width the config does
            not state (neither in ``build_config`` nor through the graph from
            the model's inputs), or a total above ``limit``; the message names
            the layer and its JSON path.

    A keras_hub backbone states arguments, not layers: its parameters are
    counted from them (`autoinit.upload.hub_sizes.backbone_parameters`),
    its embeddings first.
    """
    counter = _Bound(limit)
    if _is_backbone(config):
        config_args = _backbone_arguments(config)
        label = f"{config['class_name']} {config_args.get('name', '?')!r}"
        for part, count in hub_sizes.backbone_parameters(config["class_name"], config_args):
            counter.add(count, (), f"{label}'s {part}")
        return counter.total
    counter.model(config, None, (), 0)
    return counter.total


def _is_backbone(config: Mapping[str, Any]) -> bool:
    return is_hub_backbone(config.get("module"), config.get("class_name"))


def _backbone_arguments(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A backbone's arguments, checked (its sizes are read from them)."""
    arguments = config.get("config")
    check_hub_arguments(config["class_name"], arguments, ("config",), None)
    return arguments  # type: ignore[return-value]


@dataclass(frozen=True)
class ActivationElements:
    """Per-example float counts of a model's tensors, from its config alone.

    The same quantities as ``autoinit.probe.memory.ActivationSizes`` (which
    reads a built model, in bytes), for a process without Keras: the service
    refuses a job whose probe cannot fit before any worker builds it.
    """

    inputs: int
    outputs: int
    live_peak: int
    """Largest set of layer outputs alive at once, layers taken in config order."""
    total: int
    """All layer outputs together."""
    calls: int
    known: bool
    """False when some output shape could not be followed (counted as 0, so
    the sizes are then a lower bound)."""


def activation_elements(config: Mapping[str, Any]) -> ActivationElements:
    """Per-example tensor sizes of a model config, along the shapes that
    `parameter_bound` propagates (unknown dimensions count as 32, as the
    probe feeds them).

    Example:
        >>> activation_elements({"class_name": "Sequential", "config": {"layers": [
        ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 8]}},
        ...     {"class_name": "Dense", "config": {"units": 4}}]}}).live_peak
        12

    Raises:
        ModelConfigError: as `parameter_bound`.
    """
    if _is_backbone(config):
        sizes = hub_sizes.backbone_activations(config["class_name"], _backbone_arguments(config))
        return ActivationElements(**vars(sizes), known=True)
    counter = _Bound(None, _Liveness())
    counter.model(config, None, (), 0)
    return counter.live.summary()


def _elements(shape: Shape | None) -> int:
    """Floats per example; ``(None,)`` (a batch axis alone) holds none."""
    return 0 if shape is None or shape == (None,) else math.prod(32 if d is None else d for d in shape[1:])


class _Liveness:
    """Each tensor's size, the call that makes it and the last call that reads it."""

    def __init__(self) -> None:
        self.step = 0
        self.size: list[int] = []
        self.produced: list[int] = []
        self.last_use: dict[int, int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.known = True

    def tensor(self, shape: Shape | None) -> int:
        self.known = self.known and shape is not None
        self.size.append(_elements(shape))
        self.produced.append(self.step)
        return len(self.size) - 1

    def scratch(self, elements: int) -> None:
        """Tensors made and freed within the current call (a composite's inside)."""
        if elements:
            self.size.append(elements)
            self.produced.append(self.step)
            self.last_use[len(self.size) - 1] = self.step

    def use(self, tokens: list[int | None], step: int | None = None) -> None:
        for token in tokens:
            if token is not None:
                self.last_use[token] = self.step if step is None else step

    def repeat(self, step: int, token: int) -> None:
        """Run again the calls made since ``step`` (tensors from ``token`` on)."""
        steps, end = self.step - step, len(self.size)
        for old in range(token, end):
            self.size.append(self.size[old])
            self.produced.append(self.produced[old] + steps)
            if old in self.last_use:
                self.last_use[len(self.size) - 1] = self.last_use[old] + steps
        self.step += steps

    def summary(self) -> ActivationElements:
        self.use(self.outputs, self.step + 1)
        deltas: dict[int, int] = defaultdict(int)
        for token, elements in enumerate(self.size):
            deltas[self.produced[token]] += elements
            deltas[self.last_use.get(token, self.produced[token]) + 1] -= elements
        live = peak = 0
        for moment in sorted(deltas):
            live += deltas[moment]
            peak = max(peak, live)
        return ActivationElements(
            inputs=sum(self.size[t] for t in self.inputs),
            outputs=sum(self.size[t] for t in self.outputs),
            live_peak=peak,
            total=sum(self.size),
            calls=self.step,
            known=self.known,
        )


#: Layers whose parameters are those of the layer(s) they wrap.
WRAPPER_LAYERS = frozenset({"Bidirectional", "TimeDistributed", "RNN", "SpectralNormalization"})


class _Bound:
    def __init__(self, limit: int | None, live: _Liveness | None = None) -> None:
        self.limit = limit
        self.total = 0
        self.live = live or _Liveness()  # cheap: one list entry per tensor

    def add(self, params: int, path: _Path, label: str) -> None:
        self.total += params
        if self.limit is not None and self.total > self.limit:
            raise ParameterBoundError(
                f"The config asks for more than {self.limit:,} parameters (at least "
                f"{self.total:,} counted by {label} at {format_path(path)}); refusing it."
            )

    # Models -------------------------------------------------------------------

    def model(
        self, entry: Mapping[str, Any], inputs: list[Shape | None] | None, path: _Path, nesting: int
    ) -> list[Shape | None]:
        if nesting > _MAX_NESTING:
            raise ParameterBoundError(
                f"Models and wrappers are nested more than {_MAX_NESTING} deep at "
                f"{format_path(path)}; refusing it."
            )
        inner = entry.get("config") or {}
        layers = inner.get("layers") or []
        if entry.get("class_name") == "Sequential":
            return self.sequential(inner, layers, inputs, path, nesting)
        return self.functional(inner, layers, path, nesting)

    def sequential(
        self,
        inner: Mapping[str, Any],
        layers: list[Any],
        inputs: list[Shape | None] | None,
        path: _Path,
        nesting: int,
    ) -> list[Shape | None]:
        shape = _shape(inner.get("build_input_shape"))
        if shape is None and inputs:
            shape = inputs[0]
        token: int | None = None
        for index, layer in enumerate(layers):
            layer_path = path + ("config", "layers", index)
            if layer.get("class_name") == "InputLayer":
                shape = _input_shape(layer) or shape
                continue
            if token is None:
                token = self._input(shape, nesting)
            given = [[shape] if shape is not None else []]
            outputs = self.layer(layer, given, layer_path, nesting)
            shape = outputs[0][0] if outputs and outputs[0] else None
            token = self._called(layer, [[token]], [[shape]], given)[0][0]
        if nesting == 0 and token is not None:
            self.live.outputs.append(token)
        return [shape]

    def _input(self, shape: Shape | None, nesting: int) -> int:
        if nesting:  # a nested model's input is its caller's tensor, counted there
            return self.live.tensor((None,))
        token = self.live.tensor(shape)
        self.live.inputs.append(token)
        return token

    def _called(
        self,
        entry: Mapping[str, Any],
        consumed: list[list[int | None]],
        outputs: list[list[Shape | None]],
        inputs: list[list[Shape]] | None = None,
    ) -> list[list[int]]:
        """Record a layer's calls (a nested model's own layers are recorded
        as its walk meets them): what each reads, its ``inputs`` shapes, and
        the tensors it makes."""
        made = []
        for call, (reads, shapes) in enumerate(zip(consumed, outputs)):
            if entry.get("class_name") not in MODEL_CLASSES:
                self.live.step += 1
            self.live.use(reads)
            if is_hub_layer(entry.get("module"), entry.get("class_name")):
                # The probe walks a keras_hub composite's own layers: their outputs live inside this call.
                given = inputs[call] if inputs and call < len(inputs) else []
                calls, elements = hub_sizes.composite_work(
                    entry["class_name"], entry.get("config") or {}, given
                )
                self.live.step += calls
                self.live.scratch(elements)
            made.append([self.live.tensor(shape) for shape in shapes])
        return made

    def functional(
        self, inner: Mapping[str, Any], layers: list[Any], path: _Path, nesting: int
    ) -> list[Shape | None]:
        tensors: dict[tuple[str, int, int], Shape | None] = {}
        tokens: dict[tuple[str, int, int], int] = {}
        for index, layer in enumerate(layers):
            name = layer.get("name")
            layer_path = path + ("config", "layers", index)
            if layer.get("class_name") == "InputLayer":
                tensors[(name, 0, 0)] = _input_shape(layer)
                tokens[(name, 0, 0)] = self._input(tensors[(name, 0, 0)], nesting)
                continue
            calls, consumed = [], []
            for node in layer.get("inbound_nodes") or []:
                refs = list(_tensor_refs(node))
                shapes = [tensors.get(ref) for ref in refs]
                # One unknown input makes the call's shapes unknown: a subset
                # could understate a merge (Concatenate sums widths).
                calls.append([] if None in shapes else shapes)
                consumed.append([tokens.get(ref) for ref in refs])
            outputs = self.layer(layer, calls or [[]], layer_path, nesting)
            made = self._called(layer, consumed or [[]], outputs, calls)
            for node_index, node_outputs in enumerate(outputs):
                for tensor_index, shape in enumerate(node_outputs):
                    tensors[(name, node_index, tensor_index)] = shape
                    tokens[(name, node_index, tensor_index)] = made[node_index][tensor_index]
        refs = list(_endpoint_refs(inner.get("output_layers")))
        if nesting == 0:
            self.live.outputs.extend(tokens[ref] for ref in refs if ref in tokens)
        return [tensors.get(ref) for ref in refs]

    # Layers -------------------------------------------------------------------

    def layer(
        self, entry: Mapping[str, Any], calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        """Count one layer's parameters (the most any call or its build_config
        can create); return its output shapes per call."""
        class_name = entry.get("class_name")
        config = entry.get("config") or {}
        label = f"layer {config.get('name', entry.get('name'))!r} ({class_name})"
        if class_name in MODEL_CLASSES:
            return self._nested_model(entry, calls, path, nesting)
        if class_name in WRAPPER_LAYERS:
            return self._wrapper(entry, class_name, calls, path, nesting)
        built = _shapes((entry.get("build_config") or {}).get("input_shape")) or _shapes(
            (entry.get("build_config") or {}).get("shapes_dict")
        )
        hub = is_hub_layer(entry.get("module"), class_name)
        if hub:  # its rules read its arguments (validate_model_config checked them already)
            check_hub_arguments(class_name, config, path + ("config",), (str(config.get("name")), class_name))
        rule = (hub_sizes.LAYER_PARAMETER_RULES if hub else PARAMETER_RULES).get(class_name)
        if rule is None and class_name not in WEIGHTLESS_LAYERS and not _is_op_node(entry):
            raise ParameterBoundError(
                f"AutoInit cannot bound the parameters of class {class_name!r} "
                f"({label} at {format_path(path)}); refusing it."
            )
        if rule is not None:
            candidates = [rule(config, shapes) for shapes in [built, *calls] if shapes]
            known = [c for c in candidates if c is not None]
            if not known and rule(config, []) is None:
                raise ParameterBoundError(
                    f"Cannot bound the parameters of {label} at {format_path(path)}: the "
                    "config states no input shape for it (no build_config, and none "
                    "reaches it from the model's inputs). A config without input shapes "
                    "cannot be checked; save the model after building it."
                )
            self.add(max(known, default=rule(config, []) or 0), path, label)
        shape_rule = (hub_sizes.LAYER_SHAPE_RULES if hub else _SHAPE_RULES).get(
            class_name, _broadcast if _is_op_node(entry) else None
        )
        return [
            [_clean(shape) for shape in shape_rule(config, shapes)] if shape_rule and shapes else [None]
            for shapes in calls
        ]

    def _nested_model(
        self, entry: Mapping[str, Any], calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        first = next((shapes for shapes in calls if shapes), None)
        step, token = self.live.step, len(self.live.size)
        outputs = self.model(entry, first, path, nesting + 1)
        for _ in calls[1:]:  # walked (parameters counted) once; each call runs its layers
            self.live.repeat(step, token)
        return [outputs for _ in calls]

    def _wrapper(
        self, entry: Mapping[str, Any], class_name: str, calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        config = entry.get("config") or {}
        built = _shapes((entry.get("build_config") or {}).get("input_shape"))
        inputs = [shapes for shapes in [built, *calls] if shapes] or [[]]
        results: list[list[Shape | None]] = []
        if class_name == "TimeDistributed":
            inner = config.get("layer") or {}
            step_calls = [[(s[0], *s[2:]) for s in shapes if len(s) > 2] for shapes in inputs]
            steps = self._sublayer(inner, step_calls, path + ("config", "layer"), nesting)
            for shapes, outs in zip(inputs, steps):
                time = shapes[0][1] if shapes and len(shapes[0]) > 1 else None
                results.append([None if o is None else (o[0], time, *o[1:]) for o in outs])
        elif class_name == "Bidirectional":
            forward = config.get("layer") or {}
            backward = config.get("backward_layer") or forward
            outs = self._sublayer(forward, inputs, path + ("config", "layer"), nesting)
            self._sublayer(backward, inputs, path + ("config", "backward_layer"), nesting)
            merge = config.get("merge_mode", "concat")
            for out in outs:
                main = out[0] if out else None
                if main is not None and merge == "concat":
                    main = _with(main, -1, None if main[-1] is None else 2 * main[-1])
                results.append([main])
        elif class_name == "SpectralNormalization":
            before = self.total
            results = self._sublayer(config.get("layer"), inputs, path + ("config", "layer"), nesting)
            # Its power-iteration vector has one entry per output unit of the
            # wrapped kernel: no more than the wrapped layer's parameters.
            self.add(self.total - before, path, f"layer {config.get('name')!r} (SpectralNormalization)")
        else:  # RNN(cell)
            results = self._rnn_with_cells(config, inputs, path, nesting)
        return results[-len(calls) :] if calls else results

    def _sublayer(
        self, entry: Any, calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
            return [[None] for _ in calls]
        return self.layer(entry, calls, path, nesting + 1)

    def _rnn_with_cells(
        self, config: Mapping[str, Any], inputs: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        cell = config.get("cell") if isinstance(config.get("cell"), Mapping) else {}
        inner = cell.get("config") if isinstance(cell.get("config"), Mapping) else {}
        cells = inner.get("cells") if cell.get("class_name") == "StackedRNNCells" else None
        chain = (
            [(c, path + ("config", "cell", "config", "cells", i)) for i, c in enumerate(cells)]
            if isinstance(cells, list)
            else [(cell, path + ("config", "cell"))]
        )
        widths = [_dim(_first(shapes), -1) for shapes in inputs]
        units = None
        for sub, sub_path in chain:  # each cell once, for every width it may see
            if not isinstance(sub, Mapping):
                continue
            self._sublayer(sub, [[(None, w)] if w is not None else [] for w in widths], sub_path, nesting)
            units = _count((sub.get("config") or {}).get("units"))
            widths = [units] * len(widths)
        return [
            _units_output(config, shape, units) if (shape := _first(shapes)) is not None else [None]
            for shapes in inputs
        ]


def _input_shape(layer: Mapping[str, Any]) -> Shape | None:
    config = layer.get("config") or {}
    shape = _shape(config.get("batch_shape")) or _shape(config.get("batch_input_shape"))
    if shape is None and isinstance(config.get("shape"), list):
        shape = _shape([None, *config["shape"]])
    return shape


def _is_op_node(entry: Mapping[str, Any]) -> bool:
    module = entry.get("module")
    return isinstance(module, str) and module.startswith("keras.src.ops.")


def _tensor_refs(node: Any) -> Iterator[tuple[str, int, int]]:
    """Tensor references in an inbound node, in order: Keras 3
    ``__keras_tensor__`` dicts and tf.keras 2 ``[layer, node, tensor]`` lists."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            history = (
                (item.get("config") or {}).get("keras_history")
                if item.get("class_name") == "__keras_tensor__" and isinstance(item.get("config"), dict)
                else None
            )
            if _is_ref(history):
                yield tuple(history[:3])  # type: ignore[misc]
                continue
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            if _is_ref(item):
                yield tuple(item[:3])  # type: ignore[misc]
                continue
            stack.extend(reversed(item))


def _endpoint_refs(value: Any) -> Iterator[tuple[str, int, int]]:
    if _is_ref(value):
        yield tuple(value[:3])
        return
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    for item in items:
        if _is_ref(item):
            yield tuple(item[:3])


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and _count(value[1]) is not None
        and _count(value[2]) is not None
    )
