"""Numbers, shapes and hover text as the figure shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoinit.plot.payload import finite, is_weighted, pre_activation_of, x_of
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
    before = (pre_activation_of(layer) or {}).get(series) if series is not None else None
    if isinstance(before, Mapping):
        # The target refers to this value, not to the output after the activation.
        lines.append(f"before the fused activation: var {fmt(before.get('var'))}")
    return "<br>".join(lines)


def pre_activation_hover(layer: Mapping[str, Any], position: int, series: str) -> str:
    """The hover text of a fused layer in the pre-activation view: the values
    before the activation, next to the target they are scaled to."""
    block = pre_activation_of(layer) or {}
    entry = block.get(series)
    lines = [
        f"<b>{layer.get('name', '?')}</b> ({layer.get('class_name', '?')})",
        f"layer {x_of(layer, position)} · before its fused activation",
        series_label(series),
    ]
    if isinstance(entry, Mapping):
        lines.append(f"mean: {fmt(entry.get('mean'))} · var: {fmt(entry.get('var'))}")
    else:
        lines.append("not measured")
    if block.get("target") is not None:
        lines.append(f"target variance: {fmt(block.get('target'))}")
    output = layer.get(series)
    if isinstance(output, Mapping):
        lines.append(f"after the activation: mean {fmt(output.get('mean'))} · var {fmt(output.get('var'))}")
    return "<br>".join(lines)
