"""Numbers, shapes and hover text as the figure shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoinit.plot.payload import finite, is_weighted, x_of
from autoinit.plot.style import series_label


def fmt(value: Any, null: str = "overflow") -> str:
    """Three significant digits, scientific when needed; null reads ``null``."""
    if value is None:
        return null
    number = finite(value)
    if number is None:
        return "overflow" if isinstance(value, (int, float)) else str(value)
    return f"{number:.3g}"


def fmt_shape(shape: Any) -> str:
    """``(None, 32, 32, 96)``; several outputs separated by commas."""
    if isinstance(shape, (list, tuple)):
        if shape and all(isinstance(part, (list, tuple)) for part in shape):
            return ", ".join(fmt_shape(part) for part in shape)
        return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"
    return "?" if shape is None else str(shape)


def hover(layer: Mapping[str, Any], position: int, series: str | None) -> str:
    """The hover text of one layer, with the statistics of ``series`` if given."""
    lines = [
        f"<b>{layer.get('name', '?')}</b> ({layer.get('class_name', '?')})",
        f"layer {x_of(layer, position)} · output {fmt_shape(layer.get('output_shape'))}",
    ]
    if series is not None:
        entry = layer.get(series)
        lines.append(series_label(series))
        if isinstance(entry, Mapping):
            stats = f"mean: {fmt(entry.get('mean'))} · var: {fmt(entry.get('var'))}"
            if "grad_var" in entry:
                stats += f" · grad var: {fmt(entry.get('grad_var'))}"
            lines.append(stats)
        else:
            lines.append("not measured")
    lines.append(f"estimator: {layer.get('estimator', '?')}")
    if is_weighted(layer):
        lines.append(f"scale (weight variance): {fmt(layer.get('scale'), null='n/a')}")
    if layer.get("target") is not None:
        lines.append(f"target variance: {fmt(layer.get('target'))}")
    return "<br>".join(lines)
