"""Plotly figures of signal propagation, built from the traces payload alone.

This is the one figure spec shared by the library, the CLI and the web page
(which renders :func:`figure_json` with ``Plotly.newPlot``). It reads nothing
but the traces JSON described in ``docs/ARCHITECTURE.md`` and imports Plotly
only, so the API process can draw figures without loading TensorFlow.

The look follows the paper's Fig. 2/3: per-layer output variance on a log
axis against layer index in topological order, one line per initialization,
weighted layers marked in red, plus a mean panel below.

Example:
    >>> fig = signal_figure(traces)                  # doctest: +SKIP
    >>> write_html(fig, "signal.html")               # doctest: +SKIP
    >>> page_spec = figure_json(traces, dark=True)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "PLOTLY_CONFIG",
    "figure_json",
    "series_label",
    "signal_figure",
    "traces_to_csv",
    "write_html",
    "write_image",
]

#: plotly.js ``config`` for the figure: PNG export from the modebar. Also
#: carried in ``layout.meta["config"]`` so the page needs nothing but the
#: figure spec: ``Plotly.newPlot(div, spec.data, spec.layout, spec.layout.meta.config)``.
PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}

METRICS = ("var", "mean", "grad_var")
PASS_THROUGH = "pass-through"
PASS_THROUGH_LABEL = "pass-through (no estimator)"
WEIGHTED_LABEL = "weighted layer (has weights)"
TARGET_LABEL = "target variance"
OVERFLOW_LABEL = "overflow (value is null)"

WEIGHTED_RED = "#d62728"
PASS_THROUGH_GREY = "#7f7f7f"
REFERENCE_GREY = "#8c8c8c"

# Fixed colours so a series looks the same in every figure (and in light and
# dark templates: all mid-luminance). Red and grey are reserved above.
_SERIES_COLOURS = {
    "predicted": "#9467bd",
    "autoinit": "#1f77b4",
    "default": "#ff7f0e",
    "he_normal": "#2ca02c",
    "he_uniform": "#17becf",
    "glorot_normal": "#8c564b",
    "glorot_uniform": "#e377c2",
    "lecun_normal": "#bcbd22",
    "lecun_uniform": "#637939",
    "orthogonal": "#843c39",
}
_FALLBACK_COLOURS = ("#393b79", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1")

_AXIS_TITLES = {"var": "variance", "mean": "mean", "grad_var": "gradient variance"}


# --------------------------------------------------------------------------- #
# Series names, colours, styles
# --------------------------------------------------------------------------- #
def series_label(series: str) -> str:
    """Human name of a series: "predicted" -> "AutoInit (predicted)", etc."""
    if series == "predicted":
        return "AutoInit (predicted)"
    if series == "autoinit":
        return "AutoInit (measured)"
    return f"{series} (measured)"


def _series_colour(series: str) -> str:
    if series in _SERIES_COLOURS:
        return _SERIES_COLOURS[series]
    # crc32, not hash(): stable across processes, so colours do not change
    # between the CLI's HTML and the page.
    return _FALLBACK_COLOURS[zlib.crc32(series.encode()) % len(_FALLBACK_COLOURS)]


def _series_dash(series: str) -> str:
    if series == "predicted":
        return "dot"
    if series in ("autoinit", "default"):
        return "solid"
    return "dash"


# --------------------------------------------------------------------------- #
# Reading the payload
# --------------------------------------------------------------------------- #
def _check_traces(traces: Any) -> None:
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


def _chosen_series(traces: Mapping[str, Any], series: Sequence[str] | None) -> list[str]:
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


def _finite(value: Any) -> float | None:
    """The value as a float, or None if it is null or not finite (overflow)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _stat(layer: Mapping[str, Any], series: str, metric: str) -> tuple[float | None, bool]:
    """(value, overflowed) of one statistic; a missing entry is a gap, not an overflow."""
    entry = layer.get(series)
    if not isinstance(entry, Mapping) or metric not in entry:
        return None, False
    value = _finite(entry[metric])
    return value, value is None


def _plottable(value: float | None, log: bool) -> float | None:
    # A log axis cannot show zero or negative values: leave a gap.
    if value is None or (log and value <= 0):
        return None
    return value


def _fmt(value: Any, null: str = "overflow") -> str:
    """Three significant digits, scientific when needed; null reads ``null``."""
    if value is None:
        return null
    number = _finite(value)
    if number is None:
        return "overflow" if isinstance(value, (int, float)) else str(value)
    return f"{number:.3g}"


def _fmt_shape(shape: Any) -> str:
    if isinstance(shape, (list, tuple)):
        if shape and all(isinstance(part, (list, tuple)) for part in shape):
            return ", ".join(_fmt_shape(part) for part in shape)
        return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"
    return "?" if shape is None else str(shape)


def _x(layer: Mapping[str, Any], position: int) -> int:
    index = layer.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _is_weighted(layer: Mapping[str, Any]) -> bool:
    return bool(layer.get("has_weights"))


def _is_pass_through(layer: Mapping[str, Any]) -> bool:
    return layer.get("estimator") == PASS_THROUGH


def _hover(layer: Mapping[str, Any], position: int, series: str | None) -> str:
    """The hover text of one layer, with the statistics of ``series`` if given."""
    lines = [
        f"<b>{layer.get('name', '?')}</b> ({layer.get('class_name', '?')})",
        f"layer {_x(layer, position)} · output {_fmt_shape(layer.get('output_shape'))}",
    ]
    if series is not None:
        entry = layer.get(series)
        lines.append(series_label(series))
        if isinstance(entry, Mapping):
            stats = f"mean: {_fmt(entry.get('mean'))} · var: {_fmt(entry.get('var'))}"
            if "grad_var" in entry:
                stats += f" · grad var: {_fmt(entry.get('grad_var'))}"
            lines.append(stats)
        else:
            lines.append("not measured")
    lines.append(f"estimator: {layer.get('estimator', '?')}")
    if _is_weighted(layer):
        lines.append(f"scale (weight variance): {_fmt(layer.get('scale'), null='n/a')}")
    if layer.get("target") is not None:
        lines.append(f"target variance: {_fmt(layer.get('target'))}")
    return "<br>".join(lines)


# --------------------------------------------------------------------------- #
# The figure
# --------------------------------------------------------------------------- #
def _panels(
    metric: str, show_mean_panel: bool, show_gradients: bool, has_gradients: bool
) -> list[str]:
    panels = [metric]
    if show_gradients and has_gradients and metric != "grad_var":
        panels.append("grad_var")
    if show_mean_panel and metric != "mean":
        panels.append("mean")
    return panels


_ROW_HEIGHTS = {1: [1.0], 2: [0.7, 0.3], 3: [0.55, 0.25, 0.2]}


def _series_traces(
    layers: Sequence[Mapping[str, Any]],
    series: str,
    metric: str,
    log: bool,
    primary: bool,
) -> go.Scatter:
    many = len(layers) > 150
    xs, ys, sizes, outline_widths, hovers = [], [], [], [], []
    for position, layer in enumerate(layers):
        value, _ = _stat(layer, series, metric)
        xs.append(_x(layer, position))
        ys.append(_plottable(value, log))
        weighted = _is_weighted(layer)
        sizes.append((5 if many else 8) if weighted else (0 if many else 4))
        outline_widths.append(2 if weighted else 0)
        hovers.append(_hover(layer, position, series))
    measured = series != "predicted"
    return go.Scatter(
        x=xs,
        y=ys,
        name=series_label(series),
        legendgroup=series,
        showlegend=primary,
        mode="lines+markers" if measured else "lines",
        connectgaps=False,
        line={"color": _series_colour(series), "dash": _series_dash(series), "width": 2},
        marker={
            "color": _series_colour(series),
            "size": sizes,
            "line": {"color": WEIGHTED_RED, "width": outline_widths},
        },
        hovertext=hovers,
        hovertemplate="%{hovertext}<extra></extra>",
        meta={"series": series, "metric": metric},
    )


def _pass_through_trace(
    layers: Sequence[Mapping[str, Any]], drawn: Sequence[str], metric: str, log: bool, fallback: float
) -> go.Scatter | None:
    xs, ys, hovers = [], [], []
    for position, layer in enumerate(layers):
        if not _is_pass_through(layer):
            continue
        # Sit the cross on the first drawn series that has a value here.
        y = next(
            (v for s in drawn if (v := _plottable(_stat(layer, s, metric)[0], log)) is not None),
            fallback,
        )
        xs.append(_x(layer, position))
        ys.append(y)
        hovers.append(
            _hover(layer, position, None)
            + "<br><i>no estimator: AutoInit assumed the signal passes through unchanged</i>"
        )
    if not xs:
        return None
    return go.Scatter(
        x=xs,
        y=ys,
        name=PASS_THROUGH_LABEL,
        legendgroup="pass-through",
        mode="markers",
        marker={"symbol": "x", "size": 11, "color": PASS_THROUGH_GREY, "line": {"width": 1}},
        hovertext=hovers,
        hovertemplate="%{hovertext}<extra></extra>",
    )


def _overflow_points(
    layers: Sequence[Mapping[str, Any]], drawn: Sequence[str], metric: str
) -> list[tuple[str, int, int]]:
    """(series, position, x) of every null value of ``metric``."""
    points = []
    for series in drawn:
        for position, layer in enumerate(layers):
            if _stat(layer, series, metric)[1]:
                points.append((series, position, _x(layer, position)))
    return points


def _top_of_data(values: Sequence[float], log: bool, fallback: float) -> float:
    if not values:
        return fallback
    top = max(values)
    if log:
        return top * 10.0
    return top + 0.1 * (abs(top) or 1.0)


def signal_figure(
    traces: Mapping[str, Any],
    *,
    metric: str = "var",
    log_y: bool = True,
    series: Sequence[str] | None = None,
    title: str | None = None,
    show_mean_panel: bool = True,
    show_gradients: bool = False,
    dark: bool = False,
) -> go.Figure:
    """Per-layer signal statistics of a model, one line per initialization.

    Args:
        traces: the traces payload (``compare()`` output, see ARCHITECTURE.md).
        metric: the statistic of the top panel: "var" (default), "mean" or
            "grad_var" (the backward probe's gradient variance).
        log_y: log scale for the top panel when it shows a variance (default
            True); zero, negative and null values become gaps. "mean" is
            always linear.
        series: which series to draw, in order; default ``traces["series"]``.
        title: figure title; default names the model.
        show_mean_panel: add a linear mean panel below (shared x axis).
        show_gradients: add a gradient-variance panel when the series carry
            ``grad_var``.
        dark: use the "plotly_dark" template instead of "plotly".

    Returns:
        A ``plotly.graph_objects.Figure``. Null (overflowed) values leave gaps
        and are marked with a triangle at the top of the panel and an
        "overflow" annotation at the first layer where each series overflows.
    """
    _check_traces(traces)
    if metric not in METRICS:
        raise ValueError(f"`metric` should be one of {METRICS}. Received: metric={metric!r}")
    drawn = _chosen_series(traces, series)
    layers: list[Mapping[str, Any]] = list(traces["layers"])
    signal_variance = _finite(traces.get("signal_variance"))
    signal_variance = 1.0 if signal_variance is None else signal_variance

    has_gradients = any(
        isinstance(layer.get(s), Mapping) and "grad_var" in layer[s] for layer in layers for s in drawn
    )
    panels = _panels(metric, show_mean_panel, show_gradients, has_gradients)
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=_ROW_HEIGHTS[len(panels)],
    )

    for row, panel in enumerate(panels, start=1):
        log = panel != "mean" and log_y
        panel_series = [s for s in drawn if not (panel == "grad_var" and s == "predicted")]
        plotted: list[float] = []
        for s in panel_series:
            trace = _series_traces(layers, s, panel, log, primary=row == 1)
            plotted.extend(y for y in trace.y if y is not None)
            fig.add_trace(trace, row=row, col=1)
        fallback = signal_variance if panel != "mean" else 0.0
        if row == 1:
            crosses = _pass_through_trace(layers, panel_series, panel, log, fallback)
            if crosses is not None:
                fig.add_trace(crosses, row=row, col=1)
        if panel == "var":
            _add_target_line(fig, layers, signal_variance, row)
        elif panel == "mean":
            fig.add_hline(y=0.0, line={"color": REFERENCE_GREY, "dash": "dot", "width": 1}, row=row, col=1)
        _mark_overflows(fig, layers, panel_series, panel, log, plotted, fallback, row, first_panel=row == 1)
        fig.update_yaxes(
            title_text=_AXIS_TITLES[panel] + (" (log)" if log else ""),
            type="log" if log else "linear",
            exponentformat="power" if log else "B",
            row=row,
            col=1,
        )

    if any(_is_weighted(layer) for layer in layers):
        # Legend key for the red outlines drawn on the series' own markers.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                name=WEIGHTED_LABEL,
                mode="markers",
                marker={"size": 9, "color": "rgba(0,0,0,0)", "line": {"color": WEIGHTED_RED, "width": 2}},
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )

    fig.update_xaxes(title_text="layer index (topological order)", row=len(panels), col=1)
    fig.update_xaxes(showspikes=True, spikemode="across", spikethickness=1)
    model = traces.get("model") or {}
    fig.update_layout(
        title={"text": title if title is not None else _default_title(model, len(layers)), "x": 0.0},
        template="plotly_dark" if dark else "plotly",
        height=560 + 160 * (len(panels) - 1),
        margin={"l": 70, "r": 30, "t": 110, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0},
        hovermode="closest",
        meta={"config": _config_for(model)},
    )
    return fig


def _default_title(model: Mapping[str, Any], num_layers: int) -> str:
    name = model.get("name") or "model"
    return f"Signal propagation through {name} ({num_layers} layers)"


def _config_for(model: Mapping[str, Any]) -> dict[str, Any]:
    config = json.loads(json.dumps(PLOTLY_CONFIG))
    config["toImageButtonOptions"]["filename"] = f"autoinit_{model.get('name') or 'model'}"
    return config


def _add_target_line(fig: go.Figure, layers: Sequence[Mapping[str, Any]], level: float, row: int) -> None:
    # A trace, not a shape: shapes' coordinates on log axes are ambiguous, and
    # a trace gets a legend entry that names it.
    xs = [_x(layer, position) for position, layer in enumerate(layers)] or [0]
    fig.add_trace(
        go.Scatter(
            x=[min(xs) - 0.5, max(xs) + 0.5],
            y=[level, level],
            name=TARGET_LABEL,
            mode="lines",
            line={"color": REFERENCE_GREY, "dash": "dashdot", "width": 1.5},
            hovertemplate=f"{TARGET_LABEL}: {_fmt(level)}<extra></extra>",
        ),
        row=row,
        col=1,
    )


def _mark_overflows(
    fig: go.Figure,
    layers: Sequence[Mapping[str, Any]],
    drawn: Sequence[str],
    panel: str,
    log: bool,
    plotted: Sequence[float],
    fallback: float,
    row: int,
    first_panel: bool,
) -> None:
    """Triangles at the top of the panel for null values; on the first panel,
    a legend entry and an "overflow" note where each series first overflows."""
    points = _overflow_points(layers, drawn, panel)
    if not points:
        return
    top = _top_of_data(plotted, log, fallback)
    fig.add_trace(
        go.Scatter(
            x=[x for _, _, x in points],
            y=[top] * len(points),
            name=OVERFLOW_LABEL,
            legendgroup="overflow",
            showlegend=first_panel,
            mode="markers",
            marker={
                "symbol": "triangle-up",
                "size": 9,
                "color": [_series_colour(s) for s, _, _ in points],
            },
            hovertext=[
                _hover(layers[position], position, s) + "<br><i>overflowed (not finite)</i>"
                for s, position, _ in points
            ],
            hovertemplate="%{hovertext}<extra></extra>",
        ),
        row=row,
        col=1,
    )
    if not first_panel:
        return
    first: dict[str, int] = {}
    for s, _, x in points:
        first.setdefault(s, x)
    for offset, (s, x) in enumerate(first.items()):
        fig.add_annotation(
            x=x,
            xref="x",
            y=0.97 - 0.08 * offset,
            yref="y domain",
            text=f"overflow: {series_label(s)}",
            showarrow=False,
            xanchor="left",
            font={"color": _series_colour(s), "size": 11},
        )


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #
def figure_json(traces: Mapping[str, Any], **kwargs: Any) -> str:
    """The figure spec as JSON, for ``Plotly.newPlot`` on the page.

    ``kwargs`` go to :func:`signal_figure`. The plotly.js config (PNG export
    button options) is in ``layout.meta.config``.
    """
    return signal_figure(traces, **kwargs).to_json()


def write_html(fig: go.Figure, path: str | Path, *, offline: bool = True) -> None:
    """A standalone HTML page; ``offline`` embeds plotly.js (no network needed)."""
    meta = fig.layout.meta
    config = meta.get("config", PLOTLY_CONFIG) if isinstance(meta, dict) else PLOTLY_CONFIG
    fig.write_html(str(path), include_plotlyjs=True if offline else "cdn", full_html=True, config=config)


_IMAGE_FORMATS = ("png", "svg", "pdf", "jpeg", "jpg", "webp")


def write_image(fig: go.Figure, path: str | Path) -> None:
    """A static image; the format comes from the suffix (.png, .svg, ...).

    Needs the optional ``kaleido`` package.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in _IMAGE_FORMATS:
        expected = ["." + f for f in _IMAGE_FORMATS]
        raise ValueError(f"`path` should end in one of {expected}. Received: {str(path)!r}")
    try:
        import kaleido  # noqa: F401  (only checking it is there)
    except ImportError as error:
        raise RuntimeError(
            f"Writing a .{suffix} image needs the optional 'kaleido' package, which is not installed. "
            "Install it with `pip install kaleido`, or use write_html(), which needs nothing extra."
        ) from error
    fig.write_image(str(path))


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
_LAYER_COLUMNS = (
    "index", "name", "class_name", "has_weights", "output_shape", "estimator", "scale", "target",
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
    each series. Null values are empty cells; ``output_shape`` is JSON.
    """
    _check_traces(traces)
    layers = list(traces["layers"])
    columns: list[tuple[str, str]] = []
    for s in traces["series"]:
        columns += [(s, "mean"), (s, "var")]
        if any(isinstance(layer.get(s), Mapping) and "grad_var" in layer[s] for layer in layers):
            columns.append((s, "grad_var"))

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_LAYER_COLUMNS, *(f"{s}_{stat}" for s, stat in columns)])
    for position, layer in enumerate(layers):
        row = [
            _x(layer, position),
            layer.get("name", ""),
            layer.get("class_name", ""),
            "true" if _is_weighted(layer) else "false",
            json.dumps(layer.get("output_shape")),
            layer.get("estimator", ""),
            _csv_number(layer.get("scale")),
            _csv_number(layer.get("target")),
        ]
        for s, stat in columns:
            entry = layer.get(s)
            row.append(_csv_number(entry.get(stat)) if isinstance(entry, Mapping) else "")
        writer.writerow(row)
    return buffer.getvalue()
