"""Plotly figures of signal propagation, built from the traces payload alone.

This is the one figure spec shared by the library, the CLI and the web page
(which renders :func:`figure_json` with ``Plotly.react``). It reads nothing
but the traces JSON described in ``docs/ARCHITECTURE.md`` and imports Plotly
only, so the API process can draw figures without loading TensorFlow.

Modules: ``signal`` (the figure), ``views`` (a fused layer's output or its
pre-activation, which the target refers to), ``blocks`` (a transformer's residual stream
or one block's inside: ``signal_figure(traces, view="stream")``), ``marks`` (target line,
pass-through crosses, overflow triangles), ``style`` (labels, colours, plotly.js config),
``text`` (hover text), ``payload`` (reading the traces), ``output`` (JSON,
HTML, images), ``table`` (CSV: layers, and training steps), ``training`` (the training figure: loss and
gradient norm per step, from ``traces["training"]``).

Example:
    >>> fig = signal_figure(traces)                  # doctest: +SKIP
    >>> write_html(fig, "signal.html")               # doctest: +SKIP
    >>> page_spec = figure_json(traces, dark=True)   # doctest: +SKIP
    >>> curves = training_figure(traces["training"])  # doctest: +SKIP
"""

from __future__ import annotations

from autoinit.plot.output import figure_json, write_html, write_image
from autoinit.plot.payload import METRICS, PASS_THROUGH
from autoinit.plot.signal import signal_figure
from autoinit.plot.style import (
    OVERFLOW_LABEL,
    PASS_THROUGH_GREY,
    PASS_THROUGH_LABEL,
    PLOTLY_CONFIG,
    REFERENCE_GREY,
    TARGET_LABEL,
    WEIGHTED_LABEL,
    WEIGHTED_RED,
    initialization_label,
    series_label,
)
from autoinit.plot.table import traces_to_csv, training_to_csv
from autoinit.plot.training import SYNTHETIC_TASK_NOTE, TASK_NOTE_NAME, training_figure

__all__ = [
    "METRICS",
    "OVERFLOW_LABEL",
    "PASS_THROUGH",
    "PASS_THROUGH_GREY",
    "PASS_THROUGH_LABEL",
    "PLOTLY_CONFIG",
    "REFERENCE_GREY",
    "SYNTHETIC_TASK_NOTE",
    "TASK_NOTE_NAME",
    "TARGET_LABEL",
    "WEIGHTED_LABEL",
    "WEIGHTED_RED",
    "figure_json",
    "initialization_label",
    "series_label",
    "signal_figure",
    "traces_to_csv",
    "training_figure",
    "training_to_csv",
    "write_html",
    "write_image",
]
