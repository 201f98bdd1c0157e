"""Reading the traces payload (``docs/ARCHITECTURE.md``): checks and accessors.

Nothing here draws; every figure and table reads the payload through these.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Statistics a series may carry per layer.
METRICS = ("var", "mean", "grad_var")
PASS_THROUGH = "pass-through"


def check_traces(traces: Any) -> None:
    """Raise unless ``traces`` has the payload's ``series`` and ``layers``."""
    if not isinstance(traces, Mapping):
        raise TypeError(
            "`traces` should be the traces payload (a dict with 'series' and 'layers'). "
            f"Received: {type(traces).__name__}"
        )
    missing = [key for key in ("series", "layers") if key not in traces]
    if missing:
        raise ValueError(
            f"`traces` should have the keys 'series' and 'layers'; missing {missing}. "
            f"Received keys: {sorted(traces)}"
        )


def chosen_series(traces: Mapping[str, Any], series: Sequence[str] | None) -> list[str]:
    """The series to draw: all of ``traces["series"]``, or those asked for, checked."""
    available = list(traces["series"])
    if series is None:
        return available
    if isinstance(series, str):
        raise TypeError(f"`series` should be a sequence of names, e.g. ['{series}']. Received: {series!r}")
    unknown = [name for name in series if name not in available]
    if unknown:
        raise ValueError(
            f"`series` should name series present in traces['series'] = {available}. "
            f"Received unknown: {unknown}"
        )
    return list(series)


def finite(value: Any) -> float | None:
    """The value as a float, or None if it is null or not finite (overflow)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def entry_stat(entry: Any, metric: str) -> tuple[float | None, bool]:
    """(value, overflowed) of one statistic of a series entry ``{"mean", "var", ...}``;
    a missing entry or metric is a gap, not an overflow."""
    if not isinstance(entry, Mapping) or metric not in entry:
        return None, False
    value = finite(entry[metric])
    return value, value is None


def stat(layer: Mapping[str, Any], series: str, metric: str) -> tuple[float | None, bool]:
    """(value, overflowed) of one statistic of a layer's output."""
    return entry_stat(layer.get(series), metric)


def x_of(layer: Mapping[str, Any], position: int) -> int:
    """The layer's x coordinate: its index, or its position in the payload."""
    index = layer.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def is_signal(layer: Mapping[str, Any]) -> bool:
    """Not an integer input (token ids, a padding mask): those are indices,
    whose scale (up to the vocabulary size) would set a signal chart's axis."""
    return layer.get("signal") is not False


def is_weighted(layer: Mapping[str, Any]) -> bool:
    return bool(layer.get("has_weights"))


def is_pass_through(layer: Mapping[str, Any]) -> bool:
    """The layer had no estimator: AutoInit assumed its signal passes unchanged."""
    return layer.get("estimator") == PASS_THROUGH


def has_metric(layers: Sequence[Mapping[str, Any]], series: Sequence[str], metric: str) -> bool:
    """Some layer's entry of some of ``series`` carries ``metric``."""
    return any(isinstance(layer.get(s), Mapping) and metric in layer[s] for layer in layers for s in series)


def plottable(value: float | None, log: bool) -> float | None:
    """The value, or None (a gap) where a log axis cannot show it (zero, negative)."""
    if value is None or (log and value <= 0):
        return None
    return value


def pre_activation_of(layer: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A weighted layer's fused pre-activation block (``W x + b`` before its
    activation: ``target`` and per-series ``{"mean", "var"}``), or None."""
    block = layer.get("pre_activation")
    return block if isinstance(block, Mapping) else None


def has_pre_activation(layers: Sequence[Mapping[str, Any]]) -> bool:
    """Some layer fuses an activation and the traces carry its pre-activation."""
    return any(pre_activation_of(layer) is not None for layer in layers)


def before_activation_stat(layer: Mapping[str, Any], series: str, metric: str) -> tuple[float | None, bool]:
    """(value, overflowed) before the layer's fused activation; the output's
    where the layer fuses none (its output is what AutoInit scaled)."""
    block = pre_activation_of(layer)
    if block is None:
        return stat(layer, series, metric)
    return entry_stat(block.get(series), metric)
