"""The graph inside a composite layer: a layer that owns sublayers.

Many Keras layers are built from other layers (``keras_hub``'s
``TransformerEncoder`` holds attention, layer norms, dense layers and
dropout; a custom residual block holds its convolutions). AutoInit sees a
model's layer graph, so such a layer would be one opaque node. Here its
``call`` is run once on Keras tensors (symbolically: nothing is computed),
which records every sublayer call and every ``keras.ops`` operation it makes
as nodes; those nodes form the composite's own graph, which the graph walk
(``graph.run_graph``) descends into like a nested model, naming sublayers
``outer/inner``. Every pass (AutoInit's moments, the probes, the memory
model) sees the same graph, cached per layer call.

This needs a ``call`` written in backend-neutral ``keras.ops`` (as every
``keras_hub`` layer is); a layer whose ``call`` cannot run on Keras tensors
stays one node (and gets the pass-through warning).

Open dimensions (a sequence length of ``None``) are traced at ``open_dim()``,
the length the probes feed them: ``OPEN_DIM``, or less for a model whose
position table is shorter (``open_length``; the walk sets it per model).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import json
import re
import threading
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

__all__ = [
    "OPEN_DIM",
    "closed_shape",
    "composite_graph",
    "is_batch_bound",
    "is_composite",
    "layer_key",
    "model_graph",
    "open_dim",
    "open_length",
    "open_length_of",
]

OPEN_DIM = 32
"""The size given to an open (``None``) non-batch dimension: the probe's
inputs, the memory model and a composite's trace all use it (``open_dim``)."""

_OPEN: contextvars.ContextVar[int] = contextvars.ContextVar("autoinit_open_dim", default=OPEN_DIM)


def open_dim() -> int:
    """The size of an open dimension in the current walk (``open_length``)."""
    return _OPEN.get()


def open_length_of(model: Any) -> int:
    """``OPEN_DIM``, or the shortest learned position table of ``model``
    (a layer's ``sequence_length``, as keras_hub's position embeddings have)
    when shorter: longer sequences cannot be fed to it."""
    limits = [
        int(layer.sequence_length)
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(getattr(layer, "sequence_length", None), int) and layer.sequence_length > 0
    ]
    return min([OPEN_DIM, *limits])


def closed_shape(shape: Any, batch: int | None = None) -> tuple:
    """``shape`` with ``batch`` first and each open non-batch dimension at ``open_dim()``."""
    return (batch, *(open_dim() if d is None else int(d) for d in tuple(shape)[1:]))


@contextlib.contextmanager
def open_length(model: Any) -> Iterator[int]:
    """Within: ``open_dim()`` is ``open_length_of(model)``."""
    token = _OPEN.set(open_length_of(model))
    try:
        yield _OPEN.get()
    finally:
        _OPEN.reset(token)


_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BATCH_BOUND: weakref.WeakSet = weakref.WeakSet()
"""Composite layers traced only at a fixed batch size (see ``composite_graph``)."""
_NO_OPEN_TRACE: set[tuple] = set()
"""Layer kinds (``_kind``: class, config, shapes) whose trace with an open batch
failed: their other instances are traced at a fixed batch straight away (the
same ``call`` fails the same way; each attempt is a whole symbolic trace)."""


def layer_key(op: Any) -> str:
    """A ``keras.layers`` class name; ``"<module>.<class>"`` for a functional op
    node, a layer that a ``keras.applications`` module defines, or any layer
    defined outside Keras (``keras_hub``, user code): names alone collide."""
    name, module = type(op).__name__, type(op).__module__
    if (
        isinstance(op, keras.layers.Layer)
        and module.startswith("keras.src.")
        and not module.startswith("keras.src.applications.")
    ):
        return name
    return f"{module}.{name}"


def _has_weighted_sublayers(layer: Any) -> bool:
    try:
        sublayers = layer._flatten_layers(include_self=False, recursive=True)
    except (AttributeError, TypeError):
        return False
    return any(sub.weights for sub in sublayers)


def is_composite(op: Any) -> bool:
    """A layer the walk descends into: no rule of its own, and sublayers with weights."""
    from autoinit.keras_adapter.rules import rule_for

    if not isinstance(op, keras.layers.Layer) or isinstance(op, keras.Model):
        return False
    return rule_for(op) is None and _has_weighted_sublayers(op)


def composite_graph(layer: Any, node: Any, batch: int | None = None) -> Any | None:
    """The graph of ``layer``'s call at ``node`` (a ``keras`` ``Function``
    whose inputs stand for ``node.input_tensors``, in order), or None when
    ``call`` cannot be traced on Keras tensors.

    Traced with an open batch dimension when the layer allows it; a layer
    that builds shapes from the batch size (a causal mask broadcast to
    ``(batch, length, length)``) is traced at ``batch`` (1 when None: the
    moment walk has no batch), so the probe asks for its micro-batch's size.
    Cached per layer, node and batch.
    """
    calls = _GRAPHS.setdefault(layer, {})
    length = open_dim()
    if (id(node), None, length) not in calls:
        kind = _kind(layer, node)
        graph = None if kind in _NO_OPEN_TRACE else _trace(layer, node, None)
        if graph is None:
            _NO_OPEN_TRACE.add(kind)
        calls[(id(node), None, length)] = (node, graph)  # node kept alive: id unique
    graph = calls[(id(node), None, length)][1]
    if graph is not None:
        return graph
    key = (id(node), batch or 1, length)
    if key not in calls:
        calls[key] = (node, _trace(layer, node, batch or 1))
        if calls[key][1] is not None:
            _BATCH_BOUND.add(layer)
    return calls[key][1]


def _kind(layer: Any, node: Any) -> tuple:
    """What a layer call's trace depends on: its class, its config but for its
    name (None where ``get_config`` fails, as it does for many ``keras_hub``
    blocks), its weights' shapes and its inputs' shapes."""
    try:
        config = json.dumps({k: v for k, v in layer.get_config().items() if k != "name"}, sort_keys=True)
    except Exception:  # noqa: BLE001 - any layer's get_config may fail
        config = None
    weights = tuple((tuple(w.shape), str(w.dtype)) for w in layer.weights)
    return (type(layer), config, weights, tuple(tuple(t.shape) for t in node.input_tensors), open_dim())


def is_batch_bound(layer: Any) -> bool:
    """Whether ``layer``'s graph was traced at a fixed batch size only."""
    return layer in _BATCH_BOUND


def model_graph(model: Any) -> Any | None:
    """The graph of a subclassed model's ``call`` (a ``Function``), traced
    once on Keras tensors shaped as the model was built or first called
    (one input, or a list of inputs); None when its input shapes are
    unknown or its ``call`` cannot run on Keras tensors."""
    calls = _GRAPHS.setdefault(model, {})
    if "model" not in calls:
        with open_length(model):
            calls["model"] = _trace_model(model)
    return calls["model"]


def _trace_model(model: Any) -> Any | None:
    from keras.src.ops.function import Function

    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) != 1:
        return None
    shape = next(iter(shapes.values()))
    several = isinstance(shape, (list, tuple)) and bool(shape) and isinstance(shape[0], (list, tuple))
    try:
        placeholders = [
            keras.Input(
                batch_shape=closed_shape(one),
                name="input" if not several else f"input_{i}",
            )
            for i, one in enumerate(shape if several else [shape])
        ]
        with _tracing_specs():
            outputs = model.call(placeholders if several else placeholders[0])
        return Function(placeholders, outputs)
    except Exception:  # noqa: BLE001 - any failure of user code means "no graph"
        return None


def _trace(layer: Any, node: Any, batch: int | None) -> Any | None:
    from keras.src.ops.function import Function

    placeholders = {
        id(t): keras.Input(
            batch_shape=closed_shape(t.shape, batch),
            dtype=t.dtype,
        )
        for t in node.input_tensors
    }

    def substitute(value: Any) -> Any:
        return placeholders.get(id(value), value) if isinstance(value, keras.KerasTensor) else value

    args = keras.tree.map_structure(substitute, node.arguments.args)
    kwargs = keras.tree.map_structure(substitute, node.arguments.kwargs)
    try:
        with _tracing_specs():
            outputs = without_trailing_none(layer.call(*args, **kwargs))
        graph = Function([placeholders[id(t)] for t in node.input_tensors], outputs)
    except Exception:  # noqa: BLE001 - any failure of user code means "stay one node"
        return None
    if not any(getattr(n.operation, "weights", None) for n in _nodes(graph)):
        return None
    if batch is None and not _runs_at_another_batch(graph):
        return None
    _name_ops(graph)
    _warn_about_constant_calls(layer, graph)
    return graph


def _warn_about_constant_calls(layer: Any, graph: Any) -> None:
    """A sublayer with weights that ``call`` ran on constants (a position
    table looked up on fixed ids) computed eagerly during the trace: the
    graph holds its output as a constant, so AutoInit cannot scale it and a
    probe reads the value of trace time. Say so."""
    traced = {id(n.operation) for n in _nodes(graph)}
    missed = [
        sub.name
        for sub in layer._flatten_layers(include_self=False, recursive=False)
        if sub.weights and id(sub) not in traced
    ]
    own = [v.name for v in layer._trainable_variables + layer._non_trainable_variables]
    if missed or own:
        from autoinit.errors import UnsupportedLayerWarning

        parts = [
            f"sublayers {missed} run on constants" if missed else "",
            f"its own weights {own}" if own else "",
        ]
        warnings.warn(
            f"Layer '{layer.name}' ({type(layer).__name__}): AutoInit reaches inside it, but "
            f"{' and '.join(p for p in parts if p)} enter its graph as constants: they keep their "
            "values, and a probe of this layer reads them as they were when it was traced. "
            "Write a rule for the layer (RULES) to scale them.",
            UnsupportedLayerWarning,
            stacklevel=2,
        )


def _runs_at_another_batch(graph: Any) -> bool:
    """Whether the graph traced with an open batch runs on a batch of 2: a
    ``call`` that reads the batch size into an op's arguments
    (``ops.reshape(x, (batch, ...))``) traces fine but bakes ``None`` in."""
    zeros = [np.zeros((2, *x.shape[1:]), dtype=x.dtype) for x in graph.inputs]
    try:
        graph(zeros)
    except Exception:  # noqa: BLE001 - not runnable at another batch: trace at a fixed one
        return False
    return True


_TRACING = threading.RLock()
"""Held while a trace's patches of Keras classes are in place: traces in two
threads take turns, so each restores what it found."""


@contextlib.contextmanager
def _tracing_specs() -> Iterator[None]:
    """Shape inference fit for tracing a composite, while it traces:

    - ``keras_hub``'s cached attention layers (``MultiHeadAttention``
      subclasses) pass ``cache=None, cache_update_index=None``, which
      ``MultiHeadAttention.compute_output_spec`` does not accept: keyword
      arguments it does not know whose value is None are ignored (no cache);
      a subclass called with arguments of its own (XLNet's two streams) gets
      Keras' generic inference, which runs its ``call`` on placeholders.
    - ``EinsumDense`` infers its output shape from the shape it was built
      for, so a layer built for an open sequence length answers ``None``
      there even on a known length, and a ``call`` that reshapes by
      ``ops.shape`` then bakes ``None`` in: its spec is computed by running
      its ``call`` on placeholders instead (Keras' generic inference).
    - A sublayer that returns ``(outputs, cache)`` with ``cache=None`` when
      called without one (GPT-NeoX's and T5's attention) would fail Keras'
      check that every output is a tensor: trailing ``None`` outputs are
      dropped from the recorded node (nothing can consume them).
    """
    from keras.src.ops.node import Node
    from keras.src.ops.operation import Operation

    attention, einsum = keras.layers.MultiHeadAttention, keras.layers.EinsumDense
    with _TRACING:  # what is found is what is restored: one trace at a time
        original_attention = attention.compute_output_spec
        original_einsum = einsum.__dict__.get("compute_output_spec")
        original_node = Node.__init__
        known = set(inspect.signature(original_attention).parameters)

        def attention_spec(self, *args, **kwargs):
            if any(k not in known and v is not None for k, v in kwargs.items()):
                return Operation.compute_output_spec(self, *args, **kwargs)  # a call of its own (XLNet's)
            kwargs = {k: v for k, v in kwargs.items() if k in known}
            return original_attention(self, *args, **kwargs)

        def node_init(self, operation, call_args=None, call_kwargs=None, outputs=None):
            original_node(self, operation, call_args, call_kwargs, without_trailing_none(outputs))

        attention.compute_output_spec = attention_spec
        einsum.compute_output_spec = Operation.compute_output_spec
        Node.__init__ = node_init
        try:
            yield
        finally:
            Node.__init__ = original_node
            attention.compute_output_spec = original_attention
            if original_einsum is None:
                del einsum.compute_output_spec
            else:
                einsum.compute_output_spec = original_einsum


def without_trailing_none(outputs: Any) -> Any:
    """``outputs`` flattened without its trailing ``None`` entries when it
    has any (a layer's ``(outputs, None)``), else as it is."""
    if outputs is None:
        return outputs
    flat = keras.tree.flatten(outputs)
    if not flat or flat[-1] is not None:
        return outputs
    while flat and flat[-1] is None:
        flat.pop()
    return flat[0] if len(flat) == 1 else flat


def _nodes(graph: Any) -> list:
    return [n for depth in graph._nodes_by_depth.values() for n in depth]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _name_ops(graph: Any) -> None:
    """Name the traced ``keras.ops`` nodes, and the weightless sublayers
    Keras named itself (``softmax_4``), by their place in this graph (``add``,
    ``add_1``...), not by Keras' process-wide counters, so traces read the
    same in every process and build (``graph._autoinit_names``, which the
    walk reads; layers keep their own names). A weighted sublayer keeps its
    name (``dense_2`` may be its author's choice, as in ViT's MLP)."""
    seen: dict[str, int] = {}
    names: dict[int, str] = {}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input or id(op) in names:
                continue
            base = _snake(type(op).__name__)
            if isinstance(op, keras.layers.Layer) and (
                op.weights or not re.fullmatch(re.escape(base) + r"(_\d+)?", op.name)
            ):
                continue  # weighted, or named by its author: kept
            count = seen.get(base, 0)
            seen[base] = count + 1
            names[id(op)] = base if count == 0 else f"{base}_{count}"
            if not isinstance(op, keras.layers.Layer):
                op.name = names[id(op)]
    graph._autoinit_names = names
