"""Reading counts and shapes out of a config's values (never trusting them):
the helpers the parameter and shape rules of the upload's bound share."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "Shape",
    "as_count",
    "as_counts",
    "as_ints",
    "as_shape",
    "as_shapes",
    "axes_size",
    "channels_axis",
    "clean_shape",
    "dim_of",
    "first_shape",
    "product_of",
]

Shape = tuple[int | None, ...]  # batch axis first; None: unknown


def as_count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def as_shape(value: Any) -> Shape | None:
    """A shape from a config list (``[null, 32, 3]``), else None."""
    if not isinstance(value, list) or not value or len(value) > 16:
        return None
    if not all(item is None or as_count(item) is not None for item in value):
        return None
    return tuple(value)


def as_shapes(value: Any) -> list[Shape]:
    """Every shape in a build_config value: a shape, a list or a dict of them."""
    single = as_shape(value)
    if single is not None:
        return [single]
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    return [shape for item in items if (shape := as_shape(item)) is not None]


def as_counts(value: Any) -> list[int] | None:
    """``3`` or ``[3, 4]`` as a list of counts, else None."""
    values = [value] if not isinstance(value, list) else value
    return values if all(as_count(v) is not None for v in values) else None


def clean_shape(shape: Any) -> Shape | None:
    """An output shape with anything but a count replaced by None."""
    if not isinstance(shape, tuple):
        return None
    return tuple(d if as_count(d) is not None else None for d in shape)


def as_ints(value: Any, rank: int) -> list[int] | None:
    """``kernel_size=3`` or ``[3, 3]`` as a list of ``rank`` ints."""
    if as_count(value) is not None:
        return [value] * rank
    if isinstance(value, list) and len(value) == rank and all(as_count(v) is not None for v in value):
        return list(value)
    return None


def channels_axis(config: Mapping[str, Any]) -> int:
    return 1 if config.get("data_format") == "channels_first" else -1


def dim_of(shape: Shape | None, axis: int) -> int | None:
    if shape is None or not -len(shape) <= axis < len(shape):
        return None
    return shape[axis]


def product_of(values: list[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(values)  # type: ignore[arg-type]


def axes_size(shape: Shape | None, axis: Any) -> int | None:
    """Product of the dimensions ``axis`` (an int or a list) names."""
    axes = [axis] if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if shape is None or not isinstance(axes, list) or not axes:
        return None
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        return None
    return product_of([dim_of(shape, a) for a in axes])


def first_shape(shapes: list[Shape]) -> Shape | None:
    return shapes[0] if shapes else None
