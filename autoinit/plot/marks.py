"""What the figure marks on top of the series: the target line, layers without
an estimator, overflowed (null) values and the legend key for weighted layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from autoinit.plot.payload import is_pass_through, plottable, stat, x_of
from autoinit.plot.style import (
    OVERFLOW_LABEL,
    PASS_THROUGH_GREY,
    PASS_THROUGH_LABEL,
    REFERENCE_GREY,
    TARGET_LABEL,
    WEIGHTED_LABEL,
    WEIGHTED_RED,
    series_colour,
    series_label,
)
from autoinit.plot.text import fmt, hover


def add_target_line(fig: go.Figure, layers: Sequence[Mapping[str, Any]], level: float, row: int) -> None:
    """A dash-dotted line at AutoInit's target variance across all layers."""
    # A trace, not a shape: shapes' coordinates on log axes are ambiguous, and
    # a trace gets a legend entry that names it.
    xs = [x_of(layer, position) for position, layer in enumerate(layers)] or [0]
    fig.add_trace(
        go.Scatter(
            x=[min(xs) - 0.5, max(xs) + 0.5],
            y=[level, level],
            name=TARGET_LABEL,
            mode="lines",
            line={"color": REFERENCE_GREY, "dash": "dashdot", "width": 1.5},
            hovertemplate=f"{TARGET_LABEL}: {fmt(level)}<extra></extra>",
        ),
        row=row,
        col=1,
    )


def add_zero_line(fig: go.Figure, row: int) -> None:
    fig.add_hline(y=0.0, line={"color": REFERENCE_GREY, "dash": "dot", "width": 1}, row=row, col=1)


def pass_through_trace(
    layers: Sequence[Mapping[str, Any]], drawn: Sequence[str], metric: str, log: bool, fallback: float
) -> go.Scatter | None:
    """Grey crosses on the layers without an estimator, or None if there are none."""
    xs, ys, hovers = [], [], []
    for position, layer in enumerate(layers):
        if not is_pass_through(layer):
            continue
        # Sit the cross on the first drawn series that has a value here.
        y = next(
            (v for s in drawn if (v := plottable(stat(layer, s, metric)[0], log)) is not None),
            fallback,
        )
        xs.append(x_of(layer, position))
        ys.append(y)
        hovers.append(
            hover(layer, position, None)
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


def weighted_legend_key() -> go.Scatter:
    """Legend key for the red outlines drawn on the series' own markers."""
    return go.Scatter(
        x=[None],
        y=[None],
        name=WEIGHTED_LABEL,
        mode="markers",
        marker={"size": 9, "color": "rgba(0,0,0,0)", "line": {"color": WEIGHTED_RED, "width": 2}},
        hoverinfo="skip",
    )


def _overflow_points(
    layers: Sequence[Mapping[str, Any]], drawn: Sequence[str], metric: str
) -> list[tuple[str, int, int]]:
    """(series, position, x) of every null value of ``metric``."""
    points = []
    for series in drawn:
        for position, layer in enumerate(layers):
            if stat(layer, series, metric)[1]:
                points.append((series, position, x_of(layer, position)))
    return points


def _top_of_data(values: Sequence[float], log: bool, fallback: float) -> float:
    if not values:
        return fallback
    top = max(values)
    if log:
        return top * 10.0
    return top + 0.1 * (abs(top) or 1.0)


def mark_overflows(
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
                "color": [series_colour(s) for s, _, _ in points],
            },
            hovertext=[
                hover(layers[position], position, s) + "<br><i>overflowed (not finite)</i>"
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
            font={"color": series_colour(s), "size": 11},
        )
