"""The figure's two views of a layer with a fused activation (``Dense(...,
activation="relu")``): its output, after the activation, or its
pre-activation ``W x + b``, which is what AutoInit scales to the target.

Read against the target line, only the second compares like with like:
AutoInit's ReLU MLP puts each Dense output near 0.34 (the variance of ReLU of
a unit Gaussian) and each pre-activation near 1. The figure carries both, and
an ``updatemenus`` entry named ``"view"`` whose two buttons switch between
them (the page drives the same buttons from its toolbar).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from autoinit.plot.style import REFERENCE_GREY

#: The view named in a trace's ``meta["view"]``; traces without it are output
#: values (or marks that hold in both views).
OUTPUT = "output"
PRE_ACTIVATION = "pre_activation"
#: Panels whose statistics have a pre-activation counterpart.
VIEW_METRICS = ("var", "mean")
PRE_ACTIVATION_LABEL = "before the fused activation"
PRE_ACTIVATION_SYMBOL = "diamond"
VIEW_LABELS = {OUTPUT: "after activations", PRE_ACTIVATION: "before fused activations"}


def pre_activation_legend_key() -> go.Scatter:
    """Legend key for the diamonds marking pre-activation values (that view only)."""
    return go.Scatter(
        x=[None],
        y=[None],
        name=PRE_ACTIVATION_LABEL,
        mode="markers",
        # Grey outline: readable on the light and the dark template alike.
        marker={
            "symbol": PRE_ACTIVATION_SYMBOL,
            "size": 9,
            "color": "rgba(0,0,0,0)",
            "line": {"color": REFERENCE_GREY, "width": 2},
        },
        hoverinfo="skip",
        visible=False,
        meta={"view": PRE_ACTIVATION},
    )


def _view_of(trace: Any) -> str | None:
    meta = trace.meta if isinstance(trace.meta, dict) else {}
    if meta.get("view") == PRE_ACTIVATION:
        return PRE_ACTIVATION
    if "series" in meta and meta.get("metric") in VIEW_METRICS:
        return OUTPUT
    return None  # marks that hold in both views


def add_view_menu(fig: go.Figure, axis_titles: Mapping[str, Mapping[str, str]]) -> None:
    """Buttons switching the figure between the output and pre-activation views.

    ``axis_titles[view]`` maps layout keys (``"yaxis.title.text"``) to that
    view's axis titles. The output view is shown first.
    """
    views = [_view_of(trace) for trace in fig.data]
    buttons = []
    for view in (OUTPUT, PRE_ACTIVATION):
        visible = [shown is None or shown == view for shown in views]
        buttons.append(
            {
                "name": view,
                "label": VIEW_LABELS[view],
                "method": "update",
                "args": [{"visible": visible}, dict(axis_titles[view])],
            }
        )
    fig.update_layout(
        updatemenus=[
            {
                "name": "view",
                "type": "buttons",
                "direction": "right",
                "active": 0,
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                "y": -0.1,
                "yanchor": "top",
                "pad": {"t": 0, "r": 0},
                "font": {"size": 11},
                "buttons": buttons,
            }
        ]
    )


def axis_title_key(row: int) -> str:
    """Layout key of the y-axis title of a subplot row: ``yaxis.title.text``, ``yaxis2...``."""
    return ("yaxis" if row == 1 else f"yaxis{row}") + ".title.text"
