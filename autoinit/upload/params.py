"""A parameter count from the numbers a config states, without Keras."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["estimate_params"]


def _count(value: Any) -> int:
    """A non-negative integer from a config number; huge for inf, 0 if absent."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return 10**18
    return abs(int(value))


def _product(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return math.prod(max(_count(v), 1) for v in value)
    return max(_count(value), 1)


def _input_width(obj: Mapping[str, Any]) -> int:
    """Last dimension of the first input shape in build_config, else 1."""
    build = obj.get("build_config")
    shape = build.get("input_shape") if isinstance(build, Mapping) else None
    if isinstance(shape, Mapping):
        shape = next(iter(shape.values()), None)
    if isinstance(shape, (list, tuple)) and shape and isinstance(
        shape[0], (list, tuple)
    ):
        shape = shape[0]
    if isinstance(shape, (list, tuple)) and shape:
        return max(_count(shape[-1]), 1)
    return 1


_RNN_GATES = {"SimpleRNN": 1, "SimpleRNNCell": 1, "GRU": 3, "GRUCell": 3,
              "LSTM": 4, "LSTMCell": 4}


def estimate_params(class_name: str, obj: Mapping[str, Any]) -> int:
    cfg = obj.get("config")
    if not isinstance(cfg, Mapping):
        return 0
    width = _input_width(obj)
    if class_name == "Dense":
        return (width + 1) * _count(cfg.get("units"))
    if class_name == "EinsumDense":
        return width * _product(cfg.get("output_shape"))
    if class_name == "Embedding":
        return _count(cfg.get("input_dim")) * _count(cfg.get("output_dim"))
    if class_name.startswith(("DepthwiseConv", "SeparableConv")):
        depthwise = _product(cfg.get("kernel_size")) * width * max(
            _count(cfg.get("depth_multiplier")), 1
        )
        pointwise = width * _count(cfg.get("filters"))
        return depthwise + pointwise
    if class_name.startswith("Conv"):
        groups = max(_count(cfg.get("groups")), 1)
        filters = _count(cfg.get("filters"))
        return _product(cfg.get("kernel_size")) * width * filters // groups
    if class_name in _RNN_GATES:
        units = _count(cfg.get("units"))
        return _RNN_GATES[class_name] * units * (width + units + 1)
    if class_name == "MultiHeadAttention":
        heads, key_dim = _count(cfg.get("num_heads")), _count(cfg.get("key_dim"))
        value_dim = _count(cfg.get("value_dim")) or key_dim
        return heads * (2 * key_dim + 2 * value_dim) * width
    return 0
