"""Layer arguments that must be counts, checked before Keras sees them.

Keras reports ``Dense(units=-5)`` only as "could not be deserialized
properly"; these checks name the argument, the value and the layer instead.
They run on every layer of an upload (Keras 3 and converted tf.keras 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoinit.errors import ModelConfigError
from autoinit.upload.paths import Holder, Path, short
from autoinit.upload.paths import where as _where

__all__ = ["check_layer_arguments"]

#: A positive integer: ``units``, ``filters``, ...
_POSITIVE = frozenset(
    {"units", "filters", "num_heads", "key_dim", "input_dim", "output_dim", "depth_multiplier", "n", "groups"}
)
#: A positive integer or a list of them (one per spatial axis).
_POSITIVE_PER_AXIS = frozenset({"kernel_size", "strides", "pool_size", "dilation_rate", "size"})
#: May be null, meaning Keras' default (``strides`` of pooling layers).
_NULLABLE = frozenset({"value_dim", "strides"})
#: A non-negative integer, or lists of them (``ZeroPadding2D(((1, 1), (2, 2)))``).
_NON_NEGATIVE_NESTED = frozenset({"padding", "cropping"})


def check_layer_arguments(config: Any, path: Path, layer: Holder) -> None:
    """Refuse count-like arguments of one layer's ``config`` that are not counts.

    Raises:
        ModelConfigError: names the argument, what was received, its JSON
            path and the layer.
    """
    if not isinstance(config, Mapping):
        return
    for name, value in config.items():
        if value is None and name in _NULLABLE:
            continue
        if name in _POSITIVE:
            ok = _is_count(value, 1)
        elif name in _POSITIVE_PER_AXIS:
            ok = _is_count(value, 1) or (
                isinstance(value, list) and bool(value) and all(_is_count(v, 1) for v in value)
            )
        elif name in _NON_NEGATIVE_NESTED and not isinstance(value, str):
            ok = _is_nested_count(value)
        elif name == "target_shape":
            ok = isinstance(value, list) and all(_is_count(v, 1) or v == -1 for v in value)
        else:
            continue
        if not ok:
            kind = (
                "a non-negative integer (or lists of them)"
                if name in _NON_NEGATIVE_NESTED
                else (
                    "a list of positive integers (or -1)"
                    if name == "target_shape"
                    else "a positive integer" + (" or a list of them" if name in _POSITIVE_PER_AXIS else "")
                )
            )
            raise ModelConfigError(
                f"Expected {name!r} to be {kind}. Received: {short(value)} {_where(path + (name,), layer)}."
            )


def _is_count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_nested_count(value: Any) -> bool:
    """A non-negative int, or a list of (lists of) them, at most three levels."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, list) and level < 3:
            stack.extend((child, level + 1) for child in item)
        elif not _is_count(item, 0):
            return False
    return True
