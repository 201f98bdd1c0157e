"""One pass of a micro-batch through the graph in training mode, each layer
output reduced to its moments as soon as it is produced.

The pass is plain backend code (``keras.ops``): the TensorFlow backend traces
it once per model (``program``), other backends run it eagerly. Inside a
traced graph nothing holds a layer output after its consumers and its
reduction have run, so memory follows the live set, not the sum of all
activations.

A weighted layer with a fused activation (``Dense(64, activation="relu")``)
is called with its activation split off, so its linear output (the
pre-activation AutoInit scales to the target) is reduced too, then the
activation is applied: one call, no second model.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

from autoinit.keras_adapter.graph import LayerCall, run_graph
from autoinit.probe.reducers import Reducer

__all__ = ["PassLayout", "fused_activation", "forward_pass"]


@functools.lru_cache(maxsize=1)
def _fused_families() -> tuple[type, ...]:
    """Layers whose ``call`` ends in ``self.activation(linear output)``."""
    from keras.src.layers.convolutional.base_conv import BaseConv
    from keras.src.layers.convolutional.base_conv_transpose import BaseConvTranspose
    from keras.src.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv
    from keras.src.layers.convolutional.base_separable_conv import BaseSeparableConv

    return (
        keras.layers.Dense,
        keras.layers.EinsumDense,
        BaseConv,
        BaseConvTranspose,
        BaseDepthwiseConv,
        BaseSeparableConv,
    )


def fused_activation(layer: Any) -> Callable | None:
    """The non-linear activation fused into a weighted layer, or None."""
    if not isinstance(layer, _fused_families()):
        return None
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        return None
    return activation


@dataclass
class PassLayout:
    """What one pass visited (filled when the pass runs or is traced): the
    layer calls in order, the rows of their outputs' moments (the model
    inputs' rows come first, in input order) and of fused pre-activations."""

    calls: list[LayerCall] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    pre_rows: dict[int, int] = field(default_factory=dict)
    """Call position -> row of its pre-activation moments."""
    grad_calls: list[int] = field(default_factory=list)
    """Backward pass: positions of the calls whose output has a gradient row."""

    def clear(self) -> None:
        for part in (self.calls, self.rows, self.grad_calls):
            part.clear()
        self.pre_rows.clear()


def _call_layer(call: LayerCall, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    """``(outputs, pre_activation or None)`` of one layer call in training mode."""
    kwargs = dict(kwargs)
    if isinstance(call.layer, keras.layers.Layer):  # op nodes (x + y) take no `training`
        kwargs["training"] = True
    activation = fused_activation(call.layer)
    if activation is None:
        return call.layer(*args, **kwargs), None
    layer = call.layer
    layer.activation = keras.activations.linear  # split off for this call only
    try:
        pre = layer(*args, **kwargs)
    finally:
        layer.activation = activation
    return activation(pre), pre


def _in_order(reducer: Reducer) -> Callable[[list], Any]:
    """In a traced TensorFlow graph: a layer runs only once its inputs are
    reduced. Otherwise an executor short of threads (a busy machine) runs
    the layers ahead of the reductions, and every output waiting for its
    reduction stays alive: on ResNet-812 that doubled the probe's memory."""
    if not reducer.tensorflow:
        return lambda flat: contextlib.nullcontext()
    import tensorflow as tf

    if tf.executing_eagerly():
        return lambda flat: contextlib.nullcontext()
    return lambda flat: tf.control_dependencies(reducer.reductions_of(flat))


TICKS = 20
"""How many times one pass reports how far it got (``forward_pass``'s ``tick``)."""


def _ticker(
    reducer: Reducer,
    tick: Callable[[float], None] | None,
    calls: int,
    trace_tick: Callable[[float], None] | None = None,
) -> Callable[[int, list], None]:
    """``after(i, reduced)``: report ``i / calls`` about every ``calls / TICKS``
    layers, once those layers' reductions have run. In a traced TensorFlow
    graph that is a ``py_function`` depending on the reductions, so the
    report comes while the graph runs (a long single pass moves the bar), and
    ``trace_tick`` gets the same share at once, as the layers are traced;
    eagerly ``tick`` is a plain call."""
    if calls <= 0 or (tick is None and trace_tick is None):
        return lambda i, reduced: None
    every = max(1, calls // TICKS)
    graph = reducer.tensorflow and not _executing_eagerly()

    def after(i: int, reduced: list) -> None:
        if i % every and i != calls:
            return
        fraction = i / calls
        if not graph:
            if tick is not None:
                tick(fraction)
            return
        if trace_tick is not None:
            trace_tick(fraction)
        if tick is None:
            return
        import tensorflow as tf

        def report() -> Any:
            tick(fraction)
            return 0

        with tf.control_dependencies(reduced):
            tf.py_function(report, [], Tout=tf.int32)

    return after


def _executing_eagerly() -> bool:
    import tensorflow as tf

    return tf.executing_eagerly()


def forward_pass(
    model: keras.Model,
    inputs: list,
    layout: PassLayout,
    hook: Callable[[list], list] | None = None,
    tick: Callable[[float], None] | None = None,
    calls: int = 0,
    trace_tick: Callable[[float], None] | None = None,
) -> tuple[Any, Any, list]:
    """Interpret the graph on one micro-batch in training mode.

    ``hook`` replaces a call's (flat) outputs before anything consumes them
    (the backward pass taps gradients there). ``tick(fraction)`` reports the
    share of the pass's ``calls`` layer calls done (all calls, as
    ``memory.activation_sizes`` counts them; see ``_ticker``) while the pass
    runs, ``trace_tick(fraction)`` while it is traced. Fills ``layout`` and returns
    ``(rows, sizes, outputs)``: ``[n, 2]`` rows (``Reducer.result``), the
    per-example sizes of rows with open shapes (``Reducer``), and the
    model's outputs.
    """
    layout.clear()
    reducer = Reducer()
    tensors = [keras.ops.convert_to_tensor(x) for x in inputs]
    for x in tensors:
        reducer.add(x)

    ordered = _in_order(reducer)
    after = _ticker(reducer, tick, calls, trace_tick)
    visited = [0]

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> Any:
        visited[0] += 1
        with ordered(flat):
            outputs, pre = _call_layer(call, args, kwargs)
        flat_out = keras.tree.flatten(outputs)
        if not call.is_signal:  # mask or index arithmetic: not measured (as in the estimates)
            return flat_out
        if hook is not None:
            flat_out = hook(flat_out)
        if pre is not None:
            layout.pre_rows[len(layout.calls)] = reducer.add(pre)
        layout.calls.append(call)
        layout.rows.append(reducer.add(flat_out[0]))
        after(visited[0], reducer.reductions_of(flat_out[:1]))
        return flat_out

    outputs = run_graph(model, tensors, visit)
    rows, sizes = reducer.result()
    return rows, sizes, outputs
