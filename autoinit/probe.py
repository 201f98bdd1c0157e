"""Gaussian-input probes: measure how signals actually travel through a model.

``probe`` feeds Gaussian data through the model in training mode (dropout
active, batch normalization on batch statistics, as the paper's analysis
assumes) and records each layer's output mean and variance, reduced to
scalars inside the graph: no activation tensor is copied to host memory.
``backward=True`` also records the variance of the gradient of a random
projection loss with respect to each layer's output. ``compare`` runs the
probes for the model's own initialization, named baselines and AutoInit, next
to AutoInit's analytic prediction: the traces payload the service returns.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from autoinit.autoinit import AutoInit
from autoinit.errors import AutoInitError
from autoinit.keras_adapter.graph import LayerCall, functional_of, model_inputs, run_graph
from autoinit.keras_adapter.loading import load_model

__all__ = ["probe", "compare", "BASELINES", "apply_baseline"]

BASELINES = ("he_normal", "glorot_uniform", "lecun_normal")
Progress = Callable[[float, str], None]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _vocabulary_size(model: keras.Model) -> int:
    sizes = [layer.input_dim for layer in _all_layers(model) if isinstance(layer, keras.layers.Embedding)]
    return int(min(sizes)) if sizes else 2


def _embedding_vocabularies(model: keras.Model) -> dict[str, int]:
    """Input layer name -> smallest ``input_dim`` of the Embeddings it feeds directly.

    Such an input holds token ids whatever its dtype (a float ``keras.Input``
    feeding an Embedding is Keras' default), so it gets ids, not Gaussian noise.
    """
    vocabularies: dict[str, int] = {}
    for layer in _all_layers(model):
        if not isinstance(layer, keras.layers.Embedding):
            continue
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                if isinstance(source, keras.layers.InputLayer):
                    known = vocabularies.get(source.name, int(layer.input_dim))
                    vocabularies[source.name] = min(known, int(layer.input_dim))
    return vocabularies


def _all_layers(model: keras.Model) -> list:
    return list(model._flatten_layers(include_self=False, recursive=True))


def gaussian_inputs(
    model: keras.Model, batch_size: int, seed: int, mean: float = 0.0, var: float = 1.0
) -> list[np.ndarray]:
    """One batch per model input: N(mean, var) floats; uniformly random valid
    token ids for integer inputs and for inputs that feed an Embedding."""
    rng = np.random.default_rng(seed)
    vocabularies = _embedding_vocabularies(model)
    batch = []
    for name, shape, dtype in model_inputs(model):
        dims = [batch_size] + [d if d is not None else 32 for d in shape[1:]]
        if name in vocabularies:
            batch.append(rng.integers(0, vocabularies[name], size=dims).astype(dtype))
        elif "int" in dtype:
            batch.append(rng.integers(0, _vocabulary_size(model), size=dims).astype(dtype))
        else:
            batch.append((mean + math.sqrt(var) * rng.standard_normal(dims)).astype("float32"))
    return batch


class _StateGuard:
    """Restores non-trainable state (BN moving stats, dropout RNG) after a
    training-mode pass, and seeds dropout RNGs for reproducibility."""

    def __init__(self, model: keras.Model, seed: int) -> None:
        self.variables = list(model.non_trainable_variables)
        self.saved = [v.numpy() for v in self.variables]
        for i, v in enumerate(self.variables):
            if v.path.endswith("seed_generator_state"):
                v.assign(np.array([seed + 7919 * i, 0], dtype=v.dtype))

    def restore(self) -> None:
        for v, value in zip(self.variables, self.saved):
            v.assign(value)


def _two_pass_moments(tensor: Any) -> Any:
    """``[mean, var]`` of all elements of ``tensor`` (float32, two passes)."""
    x = keras.ops.cast(tensor, "float32")
    mean = keras.ops.mean(x)
    return keras.ops.stack([mean, keras.ops.mean(keras.ops.square(x - mean))])


class _InlineReducer:
    """Reduces each layer output where it is produced: inside a traced graph
    (where the ops fuse into the graph), or on backends other than TensorFlow."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def add(self, tensor: Any) -> None:
        self.rows.append(_two_pass_moments(tensor))

    def result(self) -> Any:
        return keras.ops.stack(self.rows)


# Layer outputs reduced per compiled call. One call per output costs about as
# much dispatch as the layer itself; 32 per call run side by side in one
# graph. The traced function (0.3 s) is built on first use, once per process.
_BATCH = 32


@functools.lru_cache(maxsize=1)
def _batched_moments() -> tuple[Any, Any]:
    """A concrete TensorFlow function ``(x_1, ..., x_32) -> [[mean, var]] * 32``
    (any shapes, float32) and the tiny tensor that pads unused slots."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32)] * _BATCH, autograph=False)
    def moments(*xs: Any) -> Any:
        rows = []
        for x in xs:
            mean = tf.reduce_mean(x)
            rows.append(tf.stack([mean, tf.reduce_mean(tf.math.squared_difference(x, mean))]))
        return tf.stack(rows)

    return moments.get_concrete_function(), tf.zeros([1])  # a concrete function skips argument binding


class _BatchedReducer:
    """Eager probes: collects layer outputs and reduces them ``_BATCH`` at a
    time. The interpreter keeps every output alive until the pass ends anyway,
    so holding a few more costs no memory."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.rows: list[Any] = []

    def add(self, tensor: Any) -> None:
        if keras.backend.standardize_dtype(tensor.dtype) != "float32":
            tensor = keras.ops.cast(tensor, "float32")
        self.pending.append(tensor)
        if len(self.pending) == _BATCH:
            self._flush()

    def _flush(self) -> None:
        moments, pad = _batched_moments()
        n = len(self.pending)
        self.rows.append(moments(*self.pending, *[pad] * (_BATCH - n))[:n])
        self.pending = []

    def result(self) -> Any:
        if self.pending:
            self._flush()
        return keras.ops.concatenate(self.rows, axis=0)


def _reducer() -> _InlineReducer | _BatchedReducer:
    return _BatchedReducer() if keras.backend.backend() == "tensorflow" else _InlineReducer()


def probe(
    model: keras.Model,
    batch_size: int = 256,
    seed: int = 0,
    input_mean: float = 0.0,
    input_var: float = 1.0,
    backward: bool = False,
    compiled: bool = False,
) -> list[dict]:
    """Measure each layer's output mean/variance on Gaussian input.

    Args:
        model: a Functional or Sequential Keras model (nested models are
            descended into; their layers are named ``outer/inner``).
        batch_size: examples in the probe batch.
        seed: seeds the input and the dropout masks.
        input_mean, input_var: the Gaussian input's moments.
        backward: also measure ``grad_var``, the variance of the gradient of
            ``L = sum(output * R)`` (``R`` standard normal, fixed) with
            respect to each layer's output.
        compiled: run the forward probe as one TensorFlow graph, traced on
            the first call per model and input shape and cached (weakly) with
            the model. Later calls cost close to one compiled forward pass;
            the first costs a trace, several eager probes' worth, so this
            pays off only when the same model is probed many times. Not
            combined with ``backward``.

    Returns:
        One JSON-serializable dict per layer call in topological order:
        ``name``, ``class_name``, ``mean``, ``var``, ``has_weights``,
        ``output_shape`` (and ``grad_var``). Overflowed values are None.
    """
    functional_of(model)
    if compiled and backward:
        raise AutoInitError("probe(compiled=True) runs the forward probe only. Received: backward=True")
    inputs = gaussian_inputs(model, batch_size, seed, input_mean, input_var)
    guard = _StateGuard(model, seed)
    try:
        if backward:
            return _probe_backward(model, inputs, seed)
        if compiled:
            return _probe_compiled(model, inputs)
        return _probe_forward(model, inputs)
    finally:
        guard.restore()


def _input_records(model: keras.Model) -> list[dict]:
    return [
        {"name": name, "class_name": "InputLayer", "has_weights": False, "output_shape": list(shape)}
        for name, shape, _ in model_inputs(model)
    ]


def _run(
    model: keras.Model,
    inputs: list,
    hook: Callable[[Any], Any] | None = None,
    reducer: _InlineReducer | _BatchedReducer | None = None,
):
    """Interpret the graph in training mode; returns ``(calls, stats, taps,
    outputs)`` with ``stats`` one ``[n, 2]`` tensor of ``[mean, var]`` rows
    (inputs first, then one per layer call)."""
    calls: list[LayerCall] = []
    reducer = reducer or _reducer()
    tensors = [keras.ops.convert_to_tensor(x) for x in inputs]
    for x in tensors:
        reducer.add(x)
    taps: list[Any] = []

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> Any:
        kwargs = dict(kwargs)
        kwargs["training"] = True
        outputs = call.layer(*args, **kwargs)
        flat_out = keras.tree.flatten(outputs)
        if hook is not None:
            flat_out = [hook(y) for y in flat_out]
            taps.append(flat_out[0])
        calls.append(call)
        reducer.add(flat_out[0])
        return flat_out

    outputs = run_graph(model, tensors, visit)
    return calls, reducer.result(), taps, outputs


def _records(
    model: keras.Model, calls: list[LayerCall], stats: np.ndarray, grads: list[float | None] | None
) -> list[dict]:
    records = _input_records(model)
    for call in calls:
        records.append(
            {
                "name": call.name,
                "class_name": call.class_name,
                "has_weights": bool(getattr(call.layer, "weights", None)),
                "output_shape": list(call.output_shapes[0]) if call.output_shapes else [],
            }
        )
    for i, record in enumerate(records):
        record["mean"] = _finite(stats[i, 0])
        record["var"] = _finite(stats[i, 1])
        # No key where no gradient was taken (inputs, integer tensors): a gap,
        # which the figures tell apart from an overflow (null).
        if grads is not None and i < len(grads) and grads[i] is not None:
            record["grad_var"] = _finite(grads[i])
    return records


def _probe_forward(model: keras.Model, inputs: list) -> list[dict]:
    calls, stats, _, _ = _run(model, inputs)
    return _records(model, calls, keras.ops.convert_to_numpy(stats), None)


# model -> (traced forward probe, the layer calls its latest trace visited).
# Weak keys, and the traced function holds the model only weakly: the cache
# never keeps a model alive.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_forward(model: keras.Model) -> tuple[Any, list[LayerCall]]:
    entry = _COMPILED.get(model)
    if entry is None:
        import tensorflow as tf

        ref = weakref.ref(model)
        calls: list[LayerCall] = []

        def forward(inputs: list) -> Any:
            traced, stats, _, _ = _run(ref(), inputs, reducer=_InlineReducer())
            calls[:] = traced  # runs at trace time only
            return stats

        entry = _COMPILED[model] = (tf.function(forward, autograph=False), calls)
    return entry


def _probe_compiled(model: keras.Model, inputs: list) -> list[dict]:
    if keras.backend.backend() != "tensorflow":
        raise AutoInitError(f"probe(compiled=True) needs the TensorFlow backend. Received: {keras.backend.backend()!r}")
    function, calls = _compiled_forward(model)
    stats = function([keras.ops.convert_to_tensor(x) for x in inputs])
    return _records(model, calls, keras.ops.convert_to_numpy(stats), None)


def _probe_backward(model: keras.Model, inputs: list, seed: int) -> list[dict]:
    import tensorflow as tf  # the gradient tape is backend-specific

    zeros: list[Any] = []

    def hook(y: Any) -> Any:
        if not keras.backend.is_float_dtype(y.dtype):
            zeros.append(None)
            return y
        zero = tf.zeros_like(y)
        tape.watch(zero)
        zeros.append(zero)
        return y + zero

    with tf.GradientTape(persistent=False) as tape:
        calls, stats, _, outputs = _run(model, inputs, hook)
        rng = np.random.default_rng(seed + 1)
        loss = tf.add_n(
            [tf.reduce_sum(tf.cast(y, "float32") * rng.standard_normal(tuple(y.shape)).astype("float32")) for y in outputs]
        )
    watched = [z for z in zeros if z is not None]
    grads = tape.gradient(loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    variances = iter(keras.ops.convert_to_numpy(tf.stack([tf.math.reduce_variance(g) for g in grads])) if grads else [])
    grad_vars: list[float | None] = [None] * len(inputs)  # no gradient taken for the inputs
    grad_vars += [None if z is None else float(next(variances)) for z in zeros]
    return _records(model, calls, keras.ops.convert_to_numpy(stats), grad_vars)


def apply_baseline(model: keras.Model, name: str, seed: int = 0) -> None:
    """Redraw every kernel (not recurrent kernels) with Keras initializer
    ``name`` (seeded), biases to zero: a named baseline for ``compare``."""
    if name not in BASELINES:
        raise AutoInitError(f"Unknown baseline. Expected one of {BASELINES} or 'default'. Received: {name!r}")
    for i, variable in enumerate(model.trainable_variables):
        leaf = variable.path.rsplit("/", 1)[-1]
        if leaf in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            init = keras.initializers.get({"class_name": name, "config": {"seed": seed + i}})
            variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
        elif leaf == "bias":
            variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))


def compare(
    model_or_config: Any,
    baselines: Sequence[str] = ("default",),
    *,
    seed: int = 0,
    input_mean: float = 0.0,
    input_var: float = 1.0,
    signal_variance: float = 1.0,
    distribution: str = "truncated_normal",
    batch_size: int = 256,
    backward: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
    custom_distribution_estimators: Mapping[type, type] | None = None,
    return_model: bool = False,
    progress: Progress | None = None,
    center_activations: bool = False,
):
    """AutoInit's prediction next to measured propagation under several inits.

    Probes the model as given (``"default"``: its own initializers), each
    named baseline (``he_normal``, ``glorot_uniform``, ``lecun_normal``
    applied to all kernels) and AutoInit, on the same Gaussian batch.

    With ``center_activations=True`` (AutoInit++, ``autoinit.centering``) the
    model is rewritten first, and every series (default and baselines too) is
    measured on the rewritten model, so all share one list of layers.

    Returns:
        The traces payload (see docs/ARCHITECTURE.md); with
        ``return_model=True``, ``(traces, model)`` where ``model`` is the
        AutoInit-initialized Keras model.
    """
    report = progress or (lambda fraction, stage: None)
    unknown = [b for b in baselines if b != "default" and b not in BASELINES]
    if unknown:
        raise AutoInitError(f"Unknown baselines {unknown}. Expected 'default' or some of {BASELINES}.")
    report(0.05, "building model")
    if isinstance(model_or_config, keras.Model):
        model = keras.models.clone_model(model_or_config)
        model.set_weights(model_or_config.get_weights())
    else:
        model = load_model(model_or_config, custom_objects)
    if center_activations:
        from autoinit.centering import center_model

        model, _ = center_model(model, custom_objects)
    initial = [v.numpy() for v in model.trainable_variables]
    options = dict(batch_size=batch_size, seed=seed, input_mean=input_mean, input_var=input_var, backward=backward)
    measured: dict[str, list[dict]] = {}
    series = [b for b in baselines if b != "default"]
    steps = 2 + len(series) + (1 if "default" in baselines else 0)
    done = 0
    if "default" in baselines:
        report(0.1, "probing default initialization")
        measured["default"] = probe(model, **options)
        done += 1
    for name in series:
        report(0.1 + 0.8 * done / steps, f"probing {name}")
        apply_baseline(model, name, seed)
        measured[name] = probe(model, **options)
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
    model, estimates = ai.initialize_model(model, return_estimates=True)
    report(0.1 + 0.8 * (done + 1) / steps, "probing AutoInit")
    measured["autoinit"] = probe(model, **options)
    traces = _traces(model, estimates, measured, signal_variance, input_mean, input_var)
    traces["center_activations"] = bool(center_activations)
    report(1.0, "done")
    return (traces, model) if return_model else traces


def _traces(model, estimates, measured, signal_variance, input_mean, input_var) -> dict:
    by_name = {name: {r["name"]: r for r in records} for name, records in measured.items()}
    layers = []
    for index, estimate in enumerate(estimates):
        entry = {
            "index": index,
            "name": estimate["name"],
            "class_name": estimate["class_name"],
            "has_weights": estimate["has_weights"],
            "output_shape": estimate["output_shape"],
            "estimator": estimate["estimator"],
            "scale": estimate["scale"],
            "target": estimate["target"],
            "predicted": {"mean": estimate["mean"], "var": estimate["var"]},
        }
        for series, records in by_name.items():
            record = records.get(estimate["name"], {})
            entry[series] = {k: record.get(k) for k in ("mean", "var", "grad_var") if k in record}
        layers.append(entry)
    return {
        "model": {
            "name": model.name,
            "num_layers": len(estimates),
            "num_params": int(model.count_params()),
        },
        "signal_variance": signal_variance,
        "input": {"mean": input_mean, "var": input_var},
        "series": ["predicted", *measured.keys()],
        "layers": layers,
    }
