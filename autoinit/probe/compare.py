"""``compare``: AutoInit's prediction next to measured propagation under
the model's own initialization, named baselines and AutoInit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from autoinit.autoinit import AutoInit
from autoinit.keras_adapter.loading import copy_model, load_model
from autoinit.options import InitializeOptions, check_options
from autoinit.probe.baselines import apply_baseline
from autoinit.probe.memory import DEFAULT_MEMORY_BUDGET
from autoinit.probe.progress import TRACING
from autoinit.probe.run import probe
from autoinit.probe.traces import build_traces

__all__ = ["compare", "Progress"]

Progress = Callable[[float, str], None]


#: Defaults come from the one options model (`autoinit.options`), as the API's and the CLI's do.
_DEFAULTS = InitializeOptions()


def compare(
    model_or_config: Any,
    baselines: Sequence[str] = tuple(_DEFAULTS.baselines),
    *,
    seed: int = _DEFAULTS.seed,
    input_mean: float = _DEFAULTS.input_mean,
    input_var: float = _DEFAULTS.input_var,
    signal_variance: float = _DEFAULTS.signal_variance,
    distribution: str = _DEFAULTS.distribution,
    batch_size: int = _DEFAULTS.probe_batch,
    backward: bool = _DEFAULTS.backward,
    custom_objects: Mapping[str, Any] | None = None,
    custom_distribution_estimators: Mapping[type, type] | None = None,
    return_model: bool = False,
    progress: Progress | None = None,
    center_activations: bool = _DEFAULTS.center_activations,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
):
    """AutoInit's prediction next to measured propagation under several inits.

    Probes the model as given (``"default"``: its own initializers), each
    named baseline (``he_normal``, ``glorot_uniform``, ``lecun_normal``
    applied to all kernels) and AutoInit, on the same Gaussian batch.

    Every probe runs the model's one traced graph (weights are variables:
    each series assigns its weights, nothing is traced again), micro-batch
    by micro-batch within ``memory_budget_bytes`` (see ``probe``);
    ``progress(fraction, stage)`` moves with the micro-batches and, while the
    first series traces the graph, with the layers traced (its stage then
    says so).

    With ``center_activations=True`` (AutoInit++, ``autoinit.centering``) the
    model is rewritten first, and every series (default and baselines too) is
    measured on the rewritten model, so all share one list of layers.

    The options are checked against `autoinit.options.InitializeOptions`'s
    bounds (``batch_size`` is its ``probe_batch``).

    Returns:
        The traces payload (see docs/ARCHITECTURE.md); with
        ``return_model=True``, ``(traces, model)`` where ``model`` is the
        AutoInit-initialized Keras model.
    """
    report = progress or (lambda fraction, stage: None)
    check_options(
        baselines=list(baselines),
        seed=seed,
        input_mean=input_mean,
        input_var=input_var,
        signal_variance=signal_variance,
        distribution=distribution,
        probe_batch=batch_size,
        backward=backward,
        center_activations=center_activations,
    )
    report(0.05, "building model")
    if isinstance(model_or_config, keras.Model):
        model = copy_model(model_or_config)
    else:
        model = load_model(model_or_config, custom_objects)
    if center_activations:
        from autoinit.centering import center_model

        model, _ = center_model(model, custom_objects)
    initial = [v.numpy() for v in model.trainable_variables]
    options = dict(
        batch_size=batch_size,
        seed=seed,
        input_mean=input_mean,
        input_var=input_var,
        backward=backward,
        memory_budget_bytes=memory_budget_bytes,
    )
    measured: dict[str, list[dict]] = {}
    series = [b for b in baselines if b != "default"]
    steps = 2 + len(series) + (1 if "default" in baselines else 0)
    done = 0

    def probed(stage: str) -> list[dict]:
        start = 0.1 + 0.8 * done / steps
        now = [start, stage]  # the last fraction and stage reported

        def moved(part: float) -> None:
            now[0] = start + 0.8 * part / steps
            report(now[0], now[1])

        def staged(name: str) -> None:  # the graph is traced once, by the first series
            now[1] = f"{stage} (tracing the graph)" if name == TRACING else stage
            report(now[0], now[1])

        report(start, stage)
        return probe(model, **options, progress=moved, stage=staged)

    if "default" in baselines:
        measured["default"] = probed("probing default initialization")
        done += 1
    for name in series:
        apply_baseline(model, name, seed)
        measured[name] = probed(f"probing {name}")
        done += 1
    if series:
        for variable, value in zip(model.trainable_variables, initial):
            variable.assign(value)
    report(0.1 + 0.8 * done / steps, "running AutoInit")
    ai = AutoInit(
        weight_init_config={"distribution": distribution},
        input_data_mean=input_mean,
        input_data_var=input_var,
        custom_distribution_estimators=custom_distribution_estimators,
        signal_variance=signal_variance,
        seed=seed,
    )  # the model is already centred when asked: AutoInit++ is AutoInit on it
    model, estimates = ai.initialize_model(model, return_estimates=True)  # in place: the same graph
    done += 1
    measured["autoinit"] = probed("probing AutoInit")
    traces = build_traces(model, estimates, measured, signal_variance, input_mean, input_var)
    traces["center_activations"] = bool(center_activations)
    report(1.0, "done")
    return (traces, model) if return_model else traces
