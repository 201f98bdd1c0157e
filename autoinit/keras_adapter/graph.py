"""Walks a Keras 3 model's layer graph in topological order.

One interpreter serves every pass over a model (AutoInit's moment
propagation, the Gaussian probes): it feeds values of any kind through the
graph, calling ``visit`` for each layer call. Nested models are descended
into, so their layers are visited (named ``outer/inner``) and a model or layer
called several times is visited once per call (``name#2``, ``name#3``...).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from autoinit.errors import ModelConfigError

__all__ = ["LayerCall", "functional_of", "is_graph_model", "run_graph", "shape_of"]


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

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__


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
            return None if not strict else _subclassed(model)
        return model
    if strict:
        _subclassed(model)
    return None


def _subclassed(model: Any) -> None:
    raise ModelConfigError(
        f"Model '{getattr(model, 'name', model)}' ({type(model).__name__}) has no "
        "layer graph. Expected a Functional or Sequential model. Received: a "
        "subclassed model, whose call() is arbitrary Python."
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
    counters = defaultdict(int) if counters is None else counters
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
            name = prefix + op.name + (f"#{index + 1}" if index else "")
            flat = [values[id(x)] for x in node.input_tensors]
            if isinstance(op, keras.Model) and is_graph_model(op):
                outputs = run_graph(
                    op, flat, visit, prefix=name + "/", counters=counters, positions=positions
                )
            else:
                args, kwargs = node.arguments.fill_in(values)
                call = LayerCall(
                    op,
                    name,
                    index,
                    tuple(shape_of(x) for x in node.input_tensors),
                    tuple(shape_of(y) for y in node.outputs),
                    positions[0],
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
