"""The ``AutoInit`` class: the library's front door."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from autoinit.errors import AutoInitError
from autoinit.moments import SignalMoments

__all__ = ["AutoInit", "DEFAULT_WEIGHT_INIT_CONFIG"]

DEFAULT_WEIGHT_INIT_CONFIG: dict[str, Any] = {
    "distribution": "truncated_normal",
    "constrain_weights": False,
    "monte_carlo_samples": 20000,
    "recurrent_monte_carlo_samples": 10000,
    "condition_on_draw": True,
}


def _as_list(value: float | Sequence[float], n: int, what: str) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) != n:
        raise AutoInitError(
            f"`{what}` should be a number or a list of {n} (one per model input). Received: {value!r}"
        )
    return values


class AutoInit:
    """Analytic signal-preserving weight initialization (Bingham & Miikkulainen, 2021).

    AutoInit walks the model's layer graph in topological order, propagates
    the mean and variance of a signal through every layer analytically
    (paper, Algorithm 1 and Appendix A), and draws the weights of every
    weighted layer so that its output has mean 0 and variance
    ``signal_variance``.

    Example:

    ```python
    from autoinit import AutoInit
    model = AutoInit().initialize_model(model)          # or a config dict / JSON string
    model, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    ```

    Args:
        weight_init_config: optional dict; fields ``distribution``
            (``"truncated_normal"`` (default), ``"untruncated_normal"``,
            ``"uniform"``, ``"orthogonal"``), ``constrain_weights`` (keep
            weights zero-mean at their initial scale during training),
            ``monte_carlo_samples`` (softmax/attention simulations),
            ``recurrent_monte_carlo_samples`` (recurrent simulations) and
            ``condition_on_draw`` (default True: once a kernel is drawn and
            its layer's realised output moments are computable, rescale it
            by one scalar so that the realised pre-activation second moment
            is exactly ``signal_variance`` for this draw, not only on average
            over draws; False keeps the paper's expected scale).
        input_data_mean: mean of the data fed to the model (a list for
            several inputs).
        input_data_var: variance of that data (likewise).
        custom_distribution_estimators: ``{LayerClass: EstimatorClass}`` with
            ``LayerOutputDistributionEstimator`` subclasses, for layer types
            AutoInit does not know.
        signal_variance: the variance to keep at every weighted layer's output.
        seed: integer seed; the same seed gives bit-identical weights. None
            draws a fresh one (see ``self.seed`` after the call).
        center_activations: AutoInit++ (paper, Section 7): before
            initializing, insert ``Rescaling(1, -mu_f)`` after every
            elementwise activation ``f`` with ``mu_f = E[f(z)] != 0``,
            ``z ~ N(0, 1)`` (see ``autoinit.centering``). The model then gets
            new layers, so a ``keras.Model`` argument is rebuilt (weights
            kept) and a new model is returned; it is left as it is when
            nothing needs centring.
    """

    def __init__(
        self,
        weight_init_config: Mapping[str, Any] | None = None,
        input_data_mean: float | Sequence[float] = 0.0,
        input_data_var: float | Sequence[float] = 1.0,
        custom_distribution_estimators: Mapping[type, type] | None = None,
        signal_variance: float = 1.0,
        seed: int | None = None,
        center_activations: bool = False,
    ) -> None:
        config = dict(DEFAULT_WEIGHT_INIT_CONFIG)
        unknown = set(weight_init_config or {}) - set(config)
        if unknown:
            raise AutoInitError(
                f"Unknown weight_init_config fields {sorted(unknown)}. Expected some of {sorted(config)}."
            )
        config.update(weight_init_config or {})
        from autoinit.keras_adapter.weights import DISTRIBUTIONS

        if not isinstance(config["condition_on_draw"], bool):
            raise AutoInitError(
                "weight_init_config['condition_on_draw'] should be True or False. "
                f"Received: {config['condition_on_draw']!r}"
            )

        if config["distribution"] not in DISTRIBUTIONS:
            raise AutoInitError(
                f"weight_init_config['distribution'] should be one of {DISTRIBUTIONS}. "
                f"Received: {config['distribution']!r}"
            )
        if not (isinstance(signal_variance, (int, float)) and signal_variance > 0):
            raise AutoInitError(
                f"`signal_variance` should be a positive number. Received: signal_variance={signal_variance!r}"
            )
        if seed is not None and not isinstance(seed, int):
            raise AutoInitError(f"`seed` argument should be an int or None. Received: seed={seed!r}")
        if isinstance(input_data_var, (int, float)) and input_data_var < 0:
            raise AutoInitError(
                f"`input_data_var` should be >= 0. Received: input_data_var={input_data_var!r}"
            )
        self.weight_init_config = config
        self.input_data_mean = input_data_mean
        self.input_data_var = input_data_var
        self.custom_distribution_estimators = dict(custom_distribution_estimators or {})
        self.signal_variance = float(signal_variance)
        self.seed = seed
        self.center_activations = bool(center_activations)

    # -- public API ------------------------------------------------------------

    def initialize_model(
        self,
        model_or_config: Any,
        custom_objects: Mapping[str, Any] | None = None,
        return_estimates: bool = False,
    ):
        """Initialize a model's weights with AutoInit.

        Args:
            model_or_config: a Functional or Sequential ``keras.Model``
                (initialized in place), a config dict, or a JSON string
                (``model.to_json()``; tf.keras 2 configs are converted).
            custom_objects: classes needed to deserialize custom layers.
            return_estimates: also return the per-layer analytic estimates.

        Returns:
            The built, initialized model; with ``return_estimates=True``, a
            tuple ``(model, estimates)`` where ``estimates`` is a
            JSON-serializable list with one dict per layer call, in
            topological order (``name``, ``class_name``, ``mean``, ``var``,
            ``shared_var``, ``has_weights``, ``estimator``, ``scale``,
            ``weight_variances``, ``target``, ``output_shape``).
        """
        model = self._load(model_or_config, custom_objects)
        estimates = self._run(model, write=True)
        return (model, estimates) if return_estimates else model

    def estimate(self, model_or_config: Any, custom_objects: Mapping[str, Any] | None = None) -> list[dict]:
        """The per-layer estimates without touching any weights (what the
        model's *current* weight scales are not: this is AutoInit's prediction
        for the initialization it would choose)."""
        return self._run(self._load(model_or_config, custom_objects), write=False)

    def initialized_config(
        self, model_or_config: Any, custom_objects: Mapping[str, Any] | None = None
    ) -> dict:
        """The model's serialized config with every weighted layer's
        initializer replaced by a seeded ``VarianceScaling`` (or
        ``Orthogonal``) carrying AutoInit's scale.

        Building a model from it (``keras.saving.deserialize_keras_object``)
        gives AutoInit-initialized weights without shipping any weights.
        """
        import keras

        model = self.initialize_model(model_or_config, custom_objects)
        return json.loads(json.dumps(keras.saving.serialize_keras_object(model)))

    def get_config(self) -> dict:
        return {
            "weight_init_config": dict(self.weight_init_config),
            "input_data_mean": self.input_data_mean,
            "input_data_var": self.input_data_var,
            "signal_variance": self.signal_variance,
            "seed": self.seed,
            "center_activations": self.center_activations,
        }

    # -- internals ---------------------------------------------------------------

    def _load(self, model_or_config: Any, custom_objects: Mapping[str, Any] | None) -> Any:
        if self.center_activations:
            from autoinit.centering import load_centered

            return load_centered(model_or_config, custom_objects)[0]
        from autoinit.keras_adapter.loading import load_model

        return load_model(model_or_config, custom_objects)

    def _run(self, model: Any, write: bool) -> list[dict]:
        from autoinit.keras_adapter.context import Session
        from autoinit.keras_adapter.graph import model_inputs
        from autoinit.keras_adapter.propagate import propagate
        from autoinit.keras_adapter.weights import WeightWriter

        if self.seed is None:
            self.seed = secrets.randbelow(2**31 - 1)
        config = self.weight_init_config
        writer = (
            WeightWriter(config["distribution"], self.seed, bool(config["constrain_weights"]))
            if write
            else None
        )
        session = Session(
            writer=writer,
            signal_variance=self.signal_variance,
            monte_carlo_samples=int(config["monte_carlo_samples"]),
            recurrent_monte_carlo_samples=int(config["recurrent_monte_carlo_samples"]),
            condition_on_draw=bool(config["condition_on_draw"]),
        )
        n = len(model_inputs(model))
        means = _as_list(self.input_data_mean, n, "input_data_mean")
        variances = _as_list(self.input_data_var, n, "input_data_var")
        inputs = [SignalMoments(m, v) for m, v in zip(means, variances)]
        if writer is None:
            return propagate(model, session, inputs, self.custom_distribution_estimators)
        with writer.drawing_ahead(model):  # the kernels' unit draws overlap the walk
            return propagate(model, session, inputs, self.custom_distribution_estimators)
