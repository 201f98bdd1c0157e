"""How the figure looks: labels, colours and line styles, the plotly.js config.

A series looks the same in every figure (the page, the CLI's HTML, the
notebook), in light and dark templates alike.
"""

from __future__ import annotations

import zlib
from typing import Any

#: plotly.js ``config`` for the figure: PNG export from the modebar. Also
#: carried in ``layout.meta["config"]`` so the page needs nothing but the
#: figure spec: ``Plotly.newPlot(div, spec.data, spec.layout, spec.layout.meta.config)``.
PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}

PASS_THROUGH_LABEL = "pass-through (no estimator)"
WEIGHTED_LABEL = "weighted layer (has weights)"
TARGET_LABEL = "target variance"
OVERFLOW_LABEL = "overflow (value is null)"

WEIGHTED_RED = "#d62728"
PASS_THROUGH_GREY = "#7f7f7f"
REFERENCE_GREY = "#8c8c8c"

#: One colour per series ``compare()`` can produce (AutoInit's prediction and
#: measurement, the model's own initialization, each baseline), all
#: mid-luminance; red and grey are reserved above.
SERIES_COLOURS = {
    "predicted": "#9467bd",
    "autoinit": "#1f77b4",
    "default": "#ff7f0e",
    "he_normal": "#2ca02c",
    "glorot_uniform": "#e377c2",
    "lecun_normal": "#bcbd22",
}
#: For series named by traces built elsewhere.
FALLBACK_COLOURS = ("#393b79", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1")

AXIS_TITLES = {"var": "variance", "mean": "mean", "grad_var": "gradient variance"}


def series_label(series: str) -> str:
    """Human name of a series: "predicted" -> "AutoInit (predicted)", etc."""
    if series == "predicted":
        return "AutoInit (predicted)"
    if series == "autoinit":
        return "AutoInit (measured)"
    return f"{series} (measured)"


def initialization_label(series: str) -> str:
    """Human name of an initialization in the training figure: "autoinit" ->
    "AutoInit", "default" -> "default (model's own)", a baseline by its name."""
    if series == "autoinit":
        return "AutoInit"
    if series == "default":
        return "default (model's own)"
    return series


def series_colour(series: str) -> str:
    """The series' fixed colour."""
    if series in SERIES_COLOURS:
        return SERIES_COLOURS[series]
    # crc32, not hash(): stable across processes, so colours do not change
    # between the CLI's HTML and the page.
    return FALLBACK_COLOURS[zlib.crc32(series.encode()) % len(FALLBACK_COLOURS)]


def series_dash(series: str) -> str:
    """Dotted prediction, solid AutoInit and default, dashed baselines."""
    if series == "predicted":
        return "dot"
    if series in ("autoinit", "default"):
        return "solid"
    return "dash"
