"""The signal figure: per-layer statistics, one line per initialization.

The look follows the paper's Fig. 2/3: per-layer output variance on a log
axis against layer index in topological order, weighted layers outlined in
red, a mean panel below and, when probed, a gradient-variance panel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autoinit.plot.blocks import ALL, add_block_axis, block_names, view_layers
from autoinit.plot.marks import (
    add_target_line,
    add_zero_line,
    mark_overflows,
    pass_through_trace,
    weighted_legend_key,
)
from autoinit.plot.payload import (
    METRICS,
    before_activation_stat,
    check_traces,
    chosen_series,
    finite,
    has_metric,
    has_pre_activation,
    is_signal,
    is_weighted,
    plottable,
    pre_activation_of,
    stat,
    x_of,
)
from autoinit.plot.style import (
    AXIS_TITLES,
    PLOTLY_CONFIG,
    WEIGHTED_RED,
    series_colour,
    series_dash,
    series_label,
)
from autoinit.plot.text import hover, pre_activation_hover
from autoinit.plot.views import (
    OUTPUT,
    PRE_ACTIVATION,
    PRE_ACTIVATION_SYMBOL,
    VIEW_METRICS,
    add_view_menu,
    axis_title_key,
    pre_activation_legend_key,
)

_ROW_HEIGHTS = {1: [1.0], 2: [0.7, 0.3], 3: [0.55, 0.25, 0.2]}
# Above this many layers, unweighted layers get no marker (the lines stay readable).
_MANY_LAYERS = 150


def _panels(metric: str, show_mean_panel: bool, show_gradients: bool, has_gradients: bool) -> list[str]:
    panels = [metric]
    if show_gradients and has_gradients and metric != "grad_var":
        panels.append("grad_var")
    if show_mean_panel and metric != "mean":
        panels.append("mean")
    return panels


def _series_trace(
    layers: Sequence[Mapping[str, Any]],
    series: str,
    metric: str,
    log: bool,
    primary: bool,
    view: str | None = None,
) -> go.Scatter:
    """One series on one panel: the layers' outputs, or (``view=PRE_ACTIVATION``)
    the values before each fused activation, marked with diamonds, hidden at first."""
    before = view == PRE_ACTIVATION
    many = len(layers) > _MANY_LAYERS
    xs, ys, sizes, symbols, outline_widths, hovers = [], [], [], [], [], []
    for position, layer in enumerate(layers):
        fused = before and pre_activation_of(layer) is not None
        value, _ = before_activation_stat(layer, series, metric) if before else stat(layer, series, metric)
        xs.append(x_of(layer, position))
        ys.append(plottable(value, log))
        weighted = is_weighted(layer)
        sizes.append((5 if many else 8) if weighted else (0 if many else 4))
        symbols.append(PRE_ACTIVATION_SYMBOL if fused else "circle")
        outline_widths.append(2 if weighted else 0)
        hovers.append(
            pre_activation_hover(layer, position, series) if fused else hover(layer, position, series)
        )
    measured = series != "predicted"
    meta = {"series": series, "metric": metric}
    if before:
        meta["view"] = PRE_ACTIVATION
    return go.Scatter(
        x=xs,
        y=ys,
        name=series_label(series),
        legendgroup=series,
        showlegend=primary,
        visible=False if before else None,
        mode="lines+markers" if measured else "lines",
        connectgaps=False,
        line={"color": series_colour(series), "dash": series_dash(series), "width": 2},
        marker={
            "color": series_colour(series),
            "size": sizes,
            "symbol": symbols,
            "line": {"color": WEIGHTED_RED, "width": outline_widths},
        },
        hovertext=hovers,
        hovertemplate="%{hovertext}<extra></extra>",
        meta=meta,
    )


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
    view: str = ALL,
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
        view: which records to draw (:mod:`autoinit.plot.blocks`): ``"all"``
            (default), ``"stream"`` (a transformer's residual stream) or
            ``"block:<name>"`` (one block's inside); other than ``"all"``, the
            x axis is labelled by name within each block, each block shaded.

    When some layer fuses an activation and the traces carry its
    ``pre_activation``, the variance and mean panels also hold a hidden
    pre-activation view, and ``layout.updatemenus`` a ``"view"`` menu whose
    buttons switch to it and back (see :mod:`autoinit.plot.views`).

    Returns:
        A ``plotly.graph_objects.Figure``. Null (overflowed) values leave gaps
        and are marked with a triangle at the top of the panel and an
        "overflow" annotation at the first layer where each series overflows.

    Example:
        >>> fig = signal_figure(traces, show_gradients=True)   # doctest: +SKIP
    """
    check_traces(traces)
    if metric not in METRICS:
        raise ValueError(f"`metric` should be one of {METRICS}. Received: metric={metric!r}")
    drawn = chosen_series(traces, series)
    everything = [
        {**layer, "index": x_of(layer, position)} for position, layer in enumerate(traces["layers"])
    ]
    layers: list[Mapping[str, Any]] = [layer for layer in view_layers(everything, view) if is_signal(layer)]
    signal_variance = finite(traces.get("signal_variance"))
    signal_variance = 1.0 if signal_variance is None else signal_variance

    panels = _panels(metric, show_mean_panel, show_gradients, has_metric(layers, drawn, "grad_var"))
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        row_heights=_ROW_HEIGHTS[len(panels)],
    )

    with_views = has_pre_activation(layers)
    titles: dict[str, dict[str, str]] = {OUTPUT: {}, PRE_ACTIVATION: {}}
    for row, panel in enumerate(panels, start=1):
        log = panel != "mean" and log_y
        panel_series = [s for s in drawn if not (panel == "grad_var" and s == "predicted")]
        plotted: list[float] = []
        for s in panel_series:
            trace = _series_trace(layers, s, panel, log, primary=row == 1)
            plotted.extend(y for y in trace.y if y is not None)
            fig.add_trace(trace, row=row, col=1)
        if with_views and panel in VIEW_METRICS:
            for s in panel_series:
                fig.add_trace(
                    _series_trace(layers, s, panel, log, row == 1, view=PRE_ACTIVATION), row=row, col=1
                )
        fallback = signal_variance if panel != "mean" else 0.0
        if row == 1:
            crosses = pass_through_trace(layers, panel_series, panel, log, fallback)
            if crosses is not None:
                fig.add_trace(crosses, row=row, col=1)
        if panel == "var":
            add_target_line(fig, layers, signal_variance, row)
        elif panel == "mean":
            add_zero_line(fig, row)
        mark_overflows(fig, layers, panel_series, panel, log, plotted, fallback, row, first_panel=row == 1)
        scale = " (log)" if log else ""
        titles[OUTPUT][axis_title_key(row)] = AXIS_TITLES[panel] + scale
        titles[PRE_ACTIVATION][axis_title_key(row)] = (
            AXIS_TITLES[panel] + (" before fused activations" if panel in VIEW_METRICS else "") + scale
        )
        fig.update_yaxes(
            title_text=AXIS_TITLES[panel] + scale,
            type="log" if log else "linear",
            exponentformat="power" if log else "B",
            row=row,
            col=1,
        )

    if any(is_weighted(layer) for layer in layers):
        fig.add_trace(weighted_legend_key(), row=1, col=1)
    if with_views:
        fig.add_trace(pre_activation_legend_key(), row=1, col=1)
        add_view_menu(fig, titles)

    fig.update_xaxes(title_text="layer index (topological order)", row=len(panels), col=1)
    if view != ALL:
        add_block_axis(fig, layers, block_names(everything), view, bottom_row=len(panels))
    fig.update_xaxes(showspikes=True, spikemode="across", spikethickness=1)
    model = traces.get("model") or {}
    fig.update_layout(
        title={"text": title if title is not None else _default_title(model, len(everything)), "x": 0.0},
        template="plotly_dark" if dark else "plotly",
        height=560 + 160 * (len(panels) - 1),
        margin={"l": 70, "r": 30, "t": 110, "b": 100 if with_views else 60},
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
