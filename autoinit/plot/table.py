"""The traces as a CSV table, one row per layer (``GET /jobs/{id}/traces.csv``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from autoinit.plot.payload import (
    check_traces,
    has_metric,
    has_pre_activation,
    is_weighted,
    pre_activation_of,
    x_of,
)

_LAYER_COLUMNS = (
    "index",
    "name",
    "class_name",
    "has_weights",
    "output_shape",
    "estimator",
    "scale",
    "target",
)


def _csv_number(value: Any) -> str:
    # Empty cell for null (overflow or not applicable); repr keeps full precision.
    if value is None or isinstance(value, bool):
        return ""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def traces_to_csv(traces: Mapping[str, Any]) -> str:
    """One row per layer: the layer's facts, then ``<series>_mean``,
    ``<series>_var`` (and ``<series>_grad_var`` where the series has it) for
    each series. Where layers fuse an activation, then ``pre_activation_target``
    and ``<series>_pre_activation_mean``/``_var``: the values before the
    activation, which are what ``target`` refers to (empty on other layers).
    Null values are empty cells; ``output_shape`` is JSON.
    """
    check_traces(traces)
    layers = list(traces["layers"])
    columns: list[tuple[str, str]] = []
    for s in traces["series"]:
        columns += [(s, "mean"), (s, "var")]
        if has_metric(layers, [s], "grad_var"):
            columns.append((s, "grad_var"))

    before = has_pre_activation(layers)
    before_columns = [(s, stat) for s in traces["series"] for stat in ("mean", "var")] if before else []

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            *_LAYER_COLUMNS,
            *(f"{s}_{stat}" for s, stat in columns),
            *(["pre_activation_target"] if before else []),
            *(f"{s}_pre_activation_{stat}" for s, stat in before_columns),
        ]
    )
    for position, layer in enumerate(layers):
        row = [
            x_of(layer, position),
            layer.get("name", ""),
            layer.get("class_name", ""),
            "true" if is_weighted(layer) else "false",
            json.dumps(layer.get("output_shape")),
            layer.get("estimator", ""),
            _csv_number(layer.get("scale")),
            _csv_number(layer.get("target")),
        ]
        for s, stat in columns:
            entry = layer.get(s)
            row.append(_csv_number(entry.get(stat)) if isinstance(entry, Mapping) else "")
        if before:
            block = pre_activation_of(layer) or {}
            row.append(_csv_number(block.get("target")))
            for s, stat in before_columns:
                entry = block.get(s)
                row.append(_csv_number(entry.get(stat)) if isinstance(entry, Mapping) else "")
        writer.writerow(row)
    return buffer.getvalue()
