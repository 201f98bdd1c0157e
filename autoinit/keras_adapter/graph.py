"""Walks a Keras 3 model's layer graph in topological order.

One interpreter serves every pass over a model (AutoInit's moment
propagation, the Gaussian probes): it feeds values of any kind through the
graph, calling ``visit`` for each layer call. Nested models, and layers
built from sublayers (``composite``), are descended into, so their layers
are visited (named ``outer/inner``) and a model or layer
called several times is visited once per call (``name#2``, ``name#3``...).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from autoinit.errors import ModelConfigError
from autoinit.keras_adapter.composite import (
    composite_graph,
    is_composite,
    model_graph,
    open_length,
)

__all__ = [
    "LayerCall",
    "embedding_vocabularies",
    "functional_of",
    "is_graph_model",
    "is_padding_mask",
    "run_graph",
    "shape_of",
]


@dataclass(frozen=True)
class LayerCall:
    """One call of a layer (or operation) inside a model's graph."""

    layer: Any
    name: str
    call_index: int
    input_shapes: tuple[tuple, ...]
    output_shapes: tuple[tuple, ...]
    position: int = -1
    """The call's index in the walk's topological order (nested models'
    calls included): the same for the same architecture, however its layers
    are named."""

    output_dtypes: tuple[str, ...] = ()

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__

    @property
    def is_signal(self) -> bool:
        """Whether the call outputs a floating-point signal (not only masks,
        ids or indices: integer and boolean tensors have no moments to keep)."""
        return not self.output_dtypes or any("float" in d for d in self.output_dtypes)


Visit = Callable[[LayerCall, tuple, dict, list], Any]


def shape_of(tensor: Any) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def is_graph_model(obj: Any) -> bool:
    return isinstance(obj, keras.Model) and functional_of(obj, strict=False) is not None


def functional_of(model: keras.Model, strict: bool = True) -> Any:
    """The Functional graph behind a Functional or built Sequential model."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None and strict:
            raise ModelConfigError(
                f"Sequential model '{model.name}' has no input shape, so its layer "
                "graph is unknown. Expected a model built on `keras.Input(shape=...)` "
                "(or `model.build(input_shape)`). Received: an unbuilt Sequential."
            )
        return graph
    if (
        hasattr(model, "_nodes_by_depth")
        and getattr(model, "_layers", None) is not None
        and hasattr(model, "inputs")
    ):
        try:
            model.inputs  # noqa: B018 - subclassed models raise here
        except (AttributeError, ValueError):
            return _traced_or_refused(model, strict)
        return model
    return _traced_or_refused(model, strict)


def _traced_or_refused(model: Any, strict: bool) -> Any:
    """A subclassed model's traced graph (``composite.model_graph``), else
    (strict) a clear error."""
    if isinstance(model, keras.Model) and (graph := model_graph(model)) is not None:
        return graph
    if strict:
        _subclassed(model)
    return None


def _subclassed(model: Any) -> None:
    raise ModelConfigError(
        f"Model '{getattr(model, 'name', model)}' ({type(model).__name__}) has no "
        "layer graph. Expected a Functional or Sequential model, or a subclassed "
        "model built (`model.build(input_shape)` or called once) whose call() runs "
        "on Keras tensors. Received: a subclassed model that is not built, or "
        "whose call() could not be traced."
    )


def run_graph(
    model: keras.Model,
    inputs: Sequence[Any],
    visit: Visit,
    *,
    prefix: str = "",
    counters: dict[int, int] | None = None,
    positions: list[int] | None = None,
) -> list[Any]:
    """Feed ``inputs`` (one value per model input) through the graph.

    ``visit(call, args, kwargs, flat_inputs)`` computes a layer's outputs
    from its inputs; ``args``/``kwargs`` are the call's arguments with values
    in place of tensors, ``flat_inputs`` the values in tensor order. Returns
    the values of the model's outputs.
    """
    graph = functional_of(model)
    # A nested model's walk keeps the open length the outer walk set.
    with open_length(model) if counters is None else contextlib.nullcontext():
        return _walk(graph, inputs, visit, prefix, counters, positions, _batch_of(inputs))


def _batch_of(inputs: Sequence[Any]) -> int | None:
    """The batch size of tensor inputs (a composite traced at a fixed batch
    must be traced at this one); None for moments or placeholders."""
    for value in inputs:
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) and isinstance(shape[0], int):
            return int(shape[0])
    return None


def _walk(
    graph: Any,
    inputs: Sequence[Any],
    visit: Visit,
    prefix: str,
    counters: dict[int, int] | None,
    positions: list[int] | None,
    batch: int | None,
) -> list[Any]:
    counters = defaultdict(int) if counters is None else counters
    names = getattr(graph, "_autoinit_names", {})  # a composite's stable names (composite._name_ops)
    positions = [0] if positions is None else positions  # next call's position, shared with nested walks
    values: dict[int, Any] = {id(x): v for x, v in zip(graph.inputs, inputs)}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if not op or node.is_input:
                continue
            if any(id(x) not in values for x in node.input_tensors):
                continue
            index = counters[id(op)]
            counters[id(op)] += 1
            name = prefix + names.get(id(op), op.name) + (f"#{index + 1}" if index else "")
            flat = [values[id(x)] for x in node.input_tensors]
            if isinstance(op, keras.Model) and is_graph_model(op):
                outputs = run_graph(
                    op, flat, visit, prefix=name + "/", counters=counters, positions=positions
                )
            elif is_composite(op) and (inner := composite_graph(op, node, batch)) is not None:
                outputs = _walk(inner, flat, visit, name + "/", counters, positions, batch)
            else:
                args, kwargs = node.arguments.fill_in(values)
                call = LayerCall(
                    op,
                    name,
                    index,
                    tuple(shape_of(x) for x in node.input_tensors),
                    tuple(shape_of(y) for y in node.outputs),
                    positions[0],
                    tuple(str(y.dtype) for y in node.outputs),
                )
                positions[0] += 1
                outputs = visit(call, args, kwargs, flat)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for tensor, value in zip(node.outputs, outputs):
                values[id(tensor)] = value
    return [values.get(id(x)) for x in graph.outputs]


def model_inputs(model: keras.Model) -> list[tuple[str, tuple, str]]:
    """``(name, shape, dtype)`` of each model input."""
    graph = functional_of(model)
    result = []
    for tensor in graph.inputs:
        layer = tensor._keras_history[0]
        result.append((layer.name, shape_of(tensor), str(tensor.dtype)))
    return result


def is_padding_mask(name: str, dtype: str) -> bool:
    """An integer model input named ``*mask`` (``keras_hub``'s ``padding_mask``):
    the probes feed it ones (every token real), and so does AutoInit's walk."""
    return "int" in dtype and name.endswith("mask")


def embedding_vocabularies(model: keras.Model) -> dict[str, int]:
    """Input layer name -> smallest ``input_dim`` of the Embeddings it feeds directly.

    Such an input holds token ids whatever its dtype (a float ``keras.Input``
    feeding an Embedding is Keras' default), so it gets ids, not Gaussian noise.
    """
    vocabularies: dict[str, int] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, keras.layers.Embedding):
            continue
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history[0]
                if isinstance(source, keras.layers.InputLayer):
                    known = vocabularies.get(source.name, int(layer.input_dim))
                    vocabularies[source.name] = min(known, int(layer.input_dim))
    return vocabularies
