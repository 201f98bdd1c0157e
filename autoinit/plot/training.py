"""The training figure: does the model train? Loss and gradient norm per step,
one line per initialization (the paper's Figure 4 question, asked of any model).

Built from the ``training`` object alone (``autoinit.training.train_probe``'s
result, ``traces["training"]`` in the CLI's and the service's traces)::

    {"task": "teacher", "synthetic": true, "steps": 20, "batch_size": 64,
     "optimizer": {"name": "SGD", "learning_rate": 0.01, "momentum": 0.9},
     "loss": ["mean_squared_error"],
     "series": {"default":  {"loss": [...], "grad_norm": [...], "diverged_at": 0},
                "autoinit": {"loss": [...], "grad_norm": [...], "diverged_at": null}}}

Both panels are on log axes (a loss that falls by decades, a gradient norm that
explodes). A copy that diverged stops training: its line ends, an ``x`` marks
the step on both panels and a dotted vertical line in its colour carries
"diverged at step N". When the task is synthetic the figure says so.
The page (``frontend/js/training.js``) draws the same spec with plotly.js.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from autoinit.plot.payload import finite, plottable
from autoinit.plot.style import PLOTLY_CONFIG, initialization_label, series_colour, series_dash
from autoinit.plot.text import fmt

#: The panels, top to bottom: (key in each series, axis title).
TRAINING_PANELS = (("loss", "loss"), ("grad_norm", "gradient norm"))
#: What the figure says when the curves come from the synthetic task.
SYNTHETIC_TASK_NOTE = "synthetic teacher task: a random linear map of Gaussian inputs"
DATA_TASK_NOTE = "task: the data given (x, y)"
#: Name of the annotation carrying the task note (so readers can find it).
TASK_NOTE_NAME = "task note"
DIVERGED_SYMBOL = "x"
#: A copy with no finite value before it diverged is marked this factor above the
#: highest value drawn (on a log axis), so its mark sits over every curve, not on one.
ABOVE_TOP = 4.0


def check_training(training: Any) -> None:
    """Raise unless ``training`` has ``series`` mapping names to loss and grad_norm lists."""
    if not isinstance(training, Mapping):
        raise TypeError(
            "`training` should be train_probe()'s result (a dict with 'series'). "
            f"Received: {type(training).__name__}"
        )
    series = training.get("series")
    if not isinstance(series, Mapping) or not series:
        raise ValueError(
            "`training` should have 'series': {name: {'loss': [...], 'grad_norm': [...]}}. "
            f"Received keys: {sorted(training)}"
        )
    for name, curves in series.items():
        missing = [key for key, _ in TRAINING_PANELS if not isinstance((curves or {}).get(key), Sequence)]
        if missing:
            raise ValueError(
                f"training['series'][{name!r}] should have lists {missing}. Received: {curves!r}"
            )


def diverged_step(curves: Mapping[str, Any]) -> int | None:
    """The step at which a copy diverged, or None."""
    step = curves.get("diverged_at")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def task_note(training: Mapping[str, Any]) -> str:
    """One line saying what the copies were trained on."""
    synthetic = training.get("synthetic", training.get("task", "teacher") == "teacher")
    return SYNTHETIC_TASK_NOTE if synthetic else DATA_TASK_NOTE


def _marker_height(values: Sequence[Any], step: int, top: float) -> float:
    """Where a divergence mark sits: the value at that step, else the last
    finite one before it, else ``top`` (above every curve)."""
    for value in reversed(values[: step + 1]):
        if (number := plottable(finite(value), log=True)) is not None:
            return number
    return top


def _curve_trace(name: str, values: Sequence[Any], key: str, title: str, primary: bool) -> go.Scatter:
    label = initialization_label(name)
    return go.Scatter(
        x=list(range(len(values))),
        y=[plottable(finite(value), log=True) for value in values],
        name=label,
        legendgroup=name,
        showlegend=primary,
        mode="lines",
        connectgaps=False,
        line={"color": series_colour(name), "dash": series_dash(name), "width": 2},
        hovertemplate=f"{label}<br>step %{{x}}<br>{title} %{{y:.3g}}<extra></extra>",
        meta={"series": name, "panel": key},
    )


def _divergence_trace(name: str, step: int, height: float, key: str) -> go.Scatter:
    label = initialization_label(name)
    return go.Scatter(
        x=[step],
        y=[height],
        name=f"{label} diverged",
        legendgroup=name,
        showlegend=False,
        mode="markers",
        marker={"symbol": DIVERGED_SYMBOL, "size": 12, "color": series_colour(name), "line": {"width": 1}},
        hovertemplate=f"{label}: diverged at step {step} (loss or gradient not finite)<extra></extra>",
        meta={"series": name, "panel": key, "diverged_at": step},
    )


def _default_title(training: Mapping[str, Any]) -> str:
    optimizer = training.get("optimizer") or {}
    parts = [f"{training.get('steps', '?')} steps of {optimizer.get('name', 'SGD')}"]
    if optimizer.get("learning_rate") is not None:
        parts.append(f"learning rate {fmt(optimizer['learning_rate'])}")
    if optimizer.get("momentum") is not None:
        parts.append(f"momentum {fmt(optimizer['momentum'])}")
    if training.get("batch_size") is not None:
        parts.append(f"batch {training['batch_size']}")
    return "Does it train? " + ", ".join(parts)


def _loss_title(training: Mapping[str, Any]) -> str:
    losses = training.get("loss")
    names = sorted({str(loss).replace("_", " ") for loss in losses}) if isinstance(losses, list) else []
    return "loss" + (f" ({', '.join(names)})" if names else "")


def training_figure(
    training: Mapping[str, Any], title: str | None = None, *, dark: bool = False
) -> go.Figure:
    """Loss (top) and gradient norm (below) per training step, one line per initialization.

    Args:
        training: ``train_probe()``'s result (``traces["training"]``).
        title: figure title; default names the optimizer, steps and batch.
        dark: use the "plotly_dark" template instead of "plotly".

    Returns:
        A ``plotly.graph_objects.Figure`` with two log-y panels sharing the
        step axis. Series keep the colours of the signal figure. A copy that
        diverged gets an ``x`` at ``diverged_at`` on both panels and a dotted
        vertical line labelled "diverged at step N"; null values are gaps.
        An annotation named ``TASK_NOTE_NAME`` says what the task was
        (``SYNTHETIC_TASK_NOTE`` for the synthetic teacher).

    Example:
        >>> fig = training_figure(traces["training"])   # doctest: +SKIP
    """
    check_training(training)
    series: Mapping[str, Mapping[str, Any]] = training["series"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    diverged = {name: step for name, curves in series.items() if (step := diverged_step(curves)) is not None}
    for row, (key, axis_title) in enumerate(TRAINING_PANELS, start=1):
        finite_values = [
            v for curves in series.values() for value in curves[key] if (v := plottable(finite(value), True))
        ]
        top = ABOVE_TOP * max(finite_values, default=1.0)
        for name, curves in series.items():
            fig.add_trace(_curve_trace(name, curves[key], key, axis_title, primary=row == 1), row=row, col=1)
        for name, step in diverged.items():
            height = _marker_height(series[name][key], step, top)
            fig.add_trace(_divergence_trace(name, step, height, key), row=row, col=1)
            fig.add_vline(
                x=step, line={"color": series_colour(name), "dash": "dot", "width": 1.5}, row=row, col=1
            )
        fig.update_yaxes(
            title_text=(_loss_title(training) if key == "loss" else axis_title) + " (log)",
            type="log",
            exponentformat="power",
            row=row,
            col=1,
        )
    for order, (name, step) in enumerate(diverged.items()):
        fig.add_annotation(
            x=step,
            y=1.0 - 0.09 * order,
            xref="x",
            yref="y domain",
            text=f"{initialization_label(name)}: diverged at step {step}",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            xshift=4,
            font={"color": series_colour(name)},
            name=f"diverged {name}",
        )
    fig.add_annotation(
        x=0.0,
        y=1.0,
        xref="paper",
        yref="paper",
        yshift=30,
        text=f"<i>{task_note(training)}</i>",
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        name=TASK_NOTE_NAME,
    )
    steps = training.get("steps")
    fig.update_xaxes(title_text="training step", row=2, col=1)
    if isinstance(steps, int) and steps > 0:
        fig.update_xaxes(range=[-0.5, steps - 0.5])
    fig.update_layout(
        title={"text": title if title is not None else _default_title(training), "x": 0.0},
        template="plotly_dark" if dark else "plotly",
        height=560,
        margin={"l": 70, "r": 30, "t": 130, "b": 60},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0.0},
        hovermode="closest",
        meta={
            "config": {
                **PLOTLY_CONFIG,
                "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "autoinit_training"},
            }
        },
    )
    return fig
