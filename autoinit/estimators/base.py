"""The public base class for layer output-distribution estimators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autoinit.moments import SignalMoments

__all__ = ["LayerOutputDistributionEstimator", "PassThroughOutputDistributionEstimator"]


class LayerOutputDistributionEstimator:
    """Maps a layer's input mean/variance to its output mean/variance.

    Subclass it to teach AutoInit a layer type it does not know, and pass
    ``custom_distribution_estimators={LayerClass: YourEstimator}`` to
    ``AutoInit``. Override ``estimate``; AutoInit instantiates the class once
    per layer call with the layer and its shapes.

    Example (a layer that doubles its input):

    ```python
    class MyCustomOutputDistributionEstimator(LayerOutputDistributionEstimator):
        def estimate(self, means_in, vars_in):
            return means_in[0], 4.0 * vars_in[0]
    ```

    Args:
        layer: the Keras layer being estimated (or None in pure-math use).
        input_shapes: the shapes of the layer's inputs (batch dimension first).
        output_shapes: the shapes of the layer's outputs.
        signal_variance: AutoInit's target variance.
    """

    def __init__(
        self,
        layer: Any = None,
        input_shapes: Sequence[tuple] | None = None,
        output_shapes: Sequence[tuple] | None = None,
        signal_variance: float = 1.0,
    ) -> None:
        self.layer = layer
        self.input_shapes = list(input_shapes or [])
        self.output_shapes = list(output_shapes or [])
        self.signal_variance = signal_variance

    def estimate(self, means_in: list[float], vars_in: list[float]) -> tuple[float, float]:
        """Return ``(mean_out, var_out)`` for inputs with ``means_in``/``vars_in``."""
        raise NotImplementedError(f"{type(self).__name__} must override `estimate(self, means_in, vars_in)`.")

    def estimate_moments(self, inputs: Sequence[SignalMoments]) -> SignalMoments:
        """Like ``estimate`` but on ``SignalMoments``.

        The default keeps the first input's shared fraction of the variance;
        override it to model how the layer treats per-channel offsets.
        """
        mean, var = self.estimate([x.mean for x in inputs], [x.var for x in inputs])
        fraction = inputs[0].shared_fraction if inputs else 0.0
        return SignalMoments(mean, var, fraction * float(var))


class PassThroughOutputDistributionEstimator(LayerOutputDistributionEstimator):
    """Returns the first input's mean and variance unchanged."""

    def estimate(self, means_in: list[float], vars_in: list[float]) -> tuple[float, float]:
        return means_in[0], vars_in[0]

    def estimate_moments(self, inputs: Sequence[SignalMoments]) -> SignalMoments:
        return inputs[0]
