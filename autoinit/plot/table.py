"""The traces as CSV tables: one row per layer (``GET /jobs/{id}/traces.csv``),
and the training curves, one row per step (``GET /jobs/{id}/traces?format=csv&table=training``)."""

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
from autoinit.plot.training import TRAINING_PANELS, check_training, diverged_step

#: First cell of the training table's last row: the step each copy diverged at.
DIVERGED_ROW = "diverged_at"

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


def training_to_csv(training: Mapping[str, Any]) -> str:
    """The training curves (``traces["training"]``), one row per step.

    Columns: ``step``, then for each initialization in the run's order
    ``<name>_loss`` and ``<name>_grad_norm``. A value that is null (not
    finite, or after the copy diverged) is an empty cell. The last row's
    ``step`` cell is ``diverged_at`` (`DIVERGED_ROW`); its cells hold, in both
    of an initialization's columns, the step at which that copy diverged, or
    are empty when it did not.

    Example:
        >>> print(training_to_csv({"series": {"autoinit": {
        ...     "loss": [1.5, 0.5], "grad_norm": [2.0, None], "diverged_at": 1}}}), end="")
        step,autoinit_loss,autoinit_grad_norm
        0,1.5,2.0
        1,0.5,
        diverged_at,1,1
    """
    check_training(training)
    series: Mapping[str, Mapping[str, Any]] = training["series"]
    steps = max(len(curves[key]) for curves in series.values() for key, _ in TRAINING_PANELS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", *(f"{name}_{key}" for name in series for key, _ in TRAINING_PANELS)])
    for step in range(steps):
        row: list[Any] = [step]
        for curves in series.values():
            for key, _ in TRAINING_PANELS:
                values = curves[key]
                row.append(_csv_number(values[step]) if step < len(values) else "")
        writer.writerow(row)
    footer: list[Any] = [DIVERGED_ROW]
    for curves in series.values():
        diverged = diverged_step(curves)
        footer += ["" if diverged is None else diverged] * len(TRAINING_PANELS)
    writer.writerow(footer)
    return buffer.getvalue()
