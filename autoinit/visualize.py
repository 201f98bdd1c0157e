"""See AutoInit at work: probe a model and plot how signals travel through it.

``AutoInitVisualizer`` is the library's one-call view of the traces payload:
it runs :func:`autoinit.probe.compare` (Gaussian probes of the model's own
initialization, named baselines and AutoInit, next to AutoInit's analytic
prediction) and draws the result with :func:`autoinit.plot.signal_figure`, the
same figure spec the CLI's ``--html`` and the web page use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from autoinit import plot

__all__ = ["AutoInitVisualizer"]

# compare() options the visualizer owns (set in __init__); the rest of
# compare()'s keywords pass through visualize(**compare_kwargs).
_OWNED = ("baselines", "seed", "batch_size", "backward")
# AutoInit constructor arguments that compare() takes under its own names.
_AUTOINIT_TO_COMPARE = {
    "input_data_mean": "input_mean",
    "input_data_var": "input_var",
    "signal_variance": "signal_variance",
    "custom_distribution_estimators": "custom_distribution_estimators",
    "center_activations": "center_activations",
}


class AutoInitVisualizer:
    """Plot per-layer output variance under the default init, baselines and AutoInit.

    Example:

    ```python
    from autoinit import AutoInitVisualizer
    fig = AutoInitVisualizer(baselines=("default", "he_normal")).visualize(model)
    fig.show()                                            # or:
    AutoInitVisualizer().visualize(model, html_path="signal.html", show=False)
    ```

    The figure has one line per series (``AutoInit (predicted)``, each
    measured initialization, ``AutoInit (measured)``) on a log axis, weighted
    layers outlined in red and the target variance as a dashed line. After a
    call, ``visualizer.traces`` holds the payload the figure was drawn from
    and ``visualizer.model`` the AutoInit-initialized model.

    Args:
        autoinit_kwargs: AutoInit's settings, by ``AutoInit``'s argument
            names: ``input_data_mean``, ``input_data_var``,
            ``signal_variance``, ``custom_distribution_estimators``,
            ``center_activations`` (AutoInit++) and
            ``weight_init_config`` (only its ``distribution`` field is used
            by the probe).
        baselines: which measured series to draw besides AutoInit:
            ``"default"`` (the model's own initializers) and any of
            ``"he_normal"``, ``"glorot_uniform"``, ``"lecun_normal"``.
        batch_size: examples in the Gaussian probe batch.
        seed: seeds the probe input, dropout masks and AutoInit's weights.
        backward: also measure gradient variances (drawn in a third panel).
    """

    def __init__(
        self,
        autoinit_kwargs: Mapping[str, Any] | None = None,
        baselines: Sequence[str] = ("default",),
        batch_size: int = 256,
        seed: int = 0,
        backward: bool = False,
    ) -> None:
        self.compare_options = _compare_options(autoinit_kwargs or {})
        self.baselines = tuple(baselines)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.backward = bool(backward)
        self.traces: dict[str, Any] | None = None
        self.model: Any = None

    def visualize(
        self,
        model_or_config: Any,
        *,
        log_y: bool = True,
        show: bool = False,
        html_path: str | Path | None = None,
        title: str | None = None,
        **compare_kwargs: Any,
    ) -> go.Figure:
        """Probe ``model_or_config`` and return the signal-propagation figure.

        Args:
            model_or_config: a Functional/Sequential ``keras.Model`` (left
                untouched: a copy is probed and initialized), a config dict or
                a JSON string.
            log_y: log scale for the variance panel.
            show: call ``fig.show()`` (opens a browser or renders inline).
            html_path: also write a standalone offline HTML page there.
            title: figure title; default names the model.
            **compare_kwargs: further :func:`autoinit.probe.compare` keywords
                (``custom_objects``, ``progress``, ...); they override the
                constructor's settings.

        Returns:
            A ``plotly.graph_objects.Figure``.
        """
        from autoinit.probe import compare

        owned = [key for key in _OWNED if key in compare_kwargs]
        if owned:
            raise TypeError(
                f"Set {owned} on AutoInitVisualizer(...), not on visualize(). Received: {sorted(compare_kwargs)}"
            )
        options = {**self.compare_options, **compare_kwargs, "return_model": True}
        self.traces, self.model = compare(
            model_or_config,
            baselines=self.baselines,
            seed=self.seed,
            batch_size=self.batch_size,
            backward=self.backward,
            **options,
        )
        fig = plot.signal_figure(self.traces, log_y=log_y, title=title, show_gradients=self.backward)
        if html_path is not None:
            plot.write_html(fig, html_path)
        if show:
            fig.show()
        return fig


def _compare_options(autoinit_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``AutoInit(**kwargs)`` names -> ``compare()`` keywords."""
    options: dict[str, Any] = {}
    for key, value in autoinit_kwargs.items():
        if key in _AUTOINIT_TO_COMPARE:
            options[_AUTOINIT_TO_COMPARE[key]] = value
        elif key == "weight_init_config":
            extra = set(value or {}) - {"distribution"}
            if extra:
                raise TypeError(
                    "AutoInitVisualizer uses only weight_init_config['distribution']. "
                    f"Received other fields: {sorted(extra)}"
                )
            if "distribution" in (value or {}):
                options["distribution"] = value["distribution"]
        elif key == "seed":
            raise TypeError("Pass `seed` to AutoInitVisualizer(seed=...), not in autoinit_kwargs.")
        else:
            expected = sorted([*_AUTOINIT_TO_COMPARE, "weight_init_config"])
            raise TypeError(f"Unknown autoinit_kwargs field. Expected some of {expected}. Received: {key!r}")
    return options
