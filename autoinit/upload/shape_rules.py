"""Output shapes of layers, as upper bounds (a ``valid`` convolution counted
as ``same``): ``SHAPE_RULES`` (class name -> rule), for the upload's bound
to follow shapes through a graph (``params``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from autoinit.upload.config_values import (
    Shape,
    as_count,
    as_counts,
    as_ints,
    channels_axis,
    first_shape,
    product_of,
)
from autoinit.upload.param_rules import WEIGHTLESS_LAYERS

__all__ = ["SHAPE_RULES", "ShapeRule", "broadcast", "units_output", "with_dim"]


def _spatial_axes(shape: Shape, config: Mapping[str, Any]) -> range:
    return range(2, len(shape)) if config.get("data_format") == "channels_first" else range(1, len(shape) - 1)


def with_dim(shape: Shape, axis: int, value: int | None) -> Shape:
    out = list(shape)
    out[axis] = value
    return tuple(out)


def _strided(shape: Shape, config: Mapping[str, Any], window_key: str, transposed: bool = False) -> Shape:
    axes = _spatial_axes(shape, config)
    window = as_ints(config.get(window_key), len(axes)) or [1] * len(axes)
    strides = as_ints(config.get("strides"), len(axes))
    if strides is None:  # pooling: strides default to the window
        strides = window if window_key == "pool_size" else [1] * len(axes)
    dilation = as_ints(config.get("dilation_rate", 1), len(axes)) or [1] * len(axes)
    out = list(shape)
    for index, axis in enumerate(axes):
        n = shape[axis]
        if n is None:
            continue
        s, k, d = max(strides[index], 1), window[index], dilation[index]
        out[axis] = max(n * s, (n - 1) * s + d * (k - 1) + 1) + s if transposed else -(-n // s)
    return tuple(out)


def _same(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    return [first_shape(shapes)]


def broadcast(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
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
    merged = list(broadcast(config, shapes)[0])  # type: ignore[arg-type]
    if not -len(merged) <= axis < len(merged):
        return [None]
    widths = [s[axis] for s in shapes]
    merged[axis] = None if any(w is None for w in widths) else sum(widths)  # type: ignore[arg-type]
    return [tuple(merged)]


def units_output(
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
        rules[name] = broadcast
    rules["Concatenate"] = _concatenate

    def last(value_key: str) -> ShapeRule:
        def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
            shape = first_shape(shapes)
            return [None if shape is None else with_dim(shape, -1, as_count(config.get(value_key)))]

        return rule

    rules["Dense"] = last("units")

    def channels(value_key: str | None, window_key: str, transposed: bool = False) -> ShapeRule:
        def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
            shape = first_shape(shapes)
            if shape is None:
                return [None]
            out = _strided(shape, config, window_key, transposed)
            axis = channels_axis(config)
            if value_key == "depth_multiplier":
                c, m = out[axis], as_count(config.get("depth_multiplier", 1))
                return [with_dim(out, axis, None if c is None or m is None else c * m)]
            if value_key is not None:
                out = with_dim(out, axis, as_count(config.get(value_key)))
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
        None if not shapes else (*shapes[0], as_count(config.get("output_dim")))
    ]
    rules["Flatten"] = lambda config, shapes: [
        None if not shapes else (shapes[0][0], product_of(list(shapes[0][1:])))
    ]
    rules["Reshape"] = _reshape
    rules["Permute"] = _permute
    rules["RepeatVector"] = lambda config, shapes: [
        None if not shapes else (shapes[0][0], as_count(config.get("n")), *shapes[0][1:])
    ]
    for name in ("Resizing", "CenterCrop", "RandomCrop"):
        rules[name] = _resized
    rules["EinsumDense"] = _einsum_output
    rules["MultiHeadAttention"] = _attention_output
    for name in ("SimpleRNN", "GRU", "LSTM"):
        rules[name] = _rnn_output(name)
    return rules


def _global_pooling(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    shape = first_shape(shapes)
    if shape is None:
        return [None]
    axis = channels_axis(config)
    if config.get("keepdims"):
        return [tuple(d if i in (0, axis % len(shape)) else 1 for i, d in enumerate(shape))]
    return [(shape[0], shape[axis])]


def _resample(key: str, combine: Callable[[int, int], int], total: bool = False) -> ShapeRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
        shape = first_shape(shapes)
        if shape is None:
            return [None]
        axes = list(_spatial_axes(shape, config))
        value = config.get(key, 2 if key == "size" else 1)
        amounts: list[int] = []
        for index in range(len(axes)):
            item = value[index] if isinstance(value, list) and index < len(value) else value
            if isinstance(item, list):
                item = sum(v for v in item if as_count(v) is not None)
            elif total and as_count(item) is not None:
                item = 2 * item
            amounts.append(item if as_count(item) is not None else 0)
        out = list(shape)
        for axis, amount in zip(axes, amounts):
            if out[axis] is not None:
                out[axis] = combine(out[axis], amount)  # type: ignore[arg-type]
        return [tuple(out)]

    return rule


def _resized(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    """Resizing and crops: the spatial size becomes ``height`` x ``width``."""
    shape = first_shape(shapes)
    if shape is None or len(shape) < 3:
        return [None]
    axes = list(_spatial_axes(shape, config))[-2:]
    out = list(shape)
    for axis, key in zip(axes, ("height", "width")):
        out[axis] = as_count(config.get(key))
    return [tuple(out)]


def _reshape(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    target = config.get("target_shape")
    shape = first_shape(shapes)
    if shape is None or not isinstance(target, list) or not all(t == -1 or as_count(t) for t in target):
        return [None]
    if -1 in target:
        total = product_of(list(shape[1:]))
        known = product_of([t for t in target if t != -1])
        fill = None if total is None or not known else total // known
        target = [fill if t == -1 else t for t in target]
    return [(shape[0], *target)]


def _permute(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    dims, shape = config.get("dims"), first_shape(shapes)
    if shape is None or as_counts(dims) is None or sorted(dims) != list(range(1, len(shape))):
        return [None]
    return [(shape[0], *(shape[d] for d in dims))]


def _einsum_output(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    out, shape = config.get("output_shape"), first_shape(shapes)
    dims = [out] if as_count(out) is not None else out if isinstance(out, list) else None
    if shape is None or dims is None:
        return [None]
    return [(shape[0], *(d if as_count(d) is not None else None for d in dims))]


def _attention_output(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
    query = first_shape(shapes)
    if query is None:
        return [None]
    out = config.get("output_shape")
    if as_count(out) is not None:
        return [with_dim(query, -1, out)]
    if isinstance(out, list):
        return [(*query[:-1], *out)]
    return [query]


def _rnn_output(class_name: str) -> ShapeRule:
    def rule(config: Mapping[str, Any], shapes: list[Shape]) -> list[Shape | None]:
        shape = first_shape(shapes)
        if shape is None:
            return [None]
        states = 2 if class_name == "LSTM" else 1
        return units_output(config, shape, as_count(config.get("units")), states)

    return rule


SHAPE_RULES = _shape_rules()
