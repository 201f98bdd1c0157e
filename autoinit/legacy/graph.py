"""Keras 2 inbound nodes -> Keras 3 ones, for one Functional model."""

from __future__ import annotations

from typing import Any

from autoinit.errors import LegacyConfigError

__all__ = ["Graph", "is_node_leaf"]


def is_node_leaf(value: Any) -> bool:
    """A Keras 2 tensor reference: [layer, node, tensor] or with kwargs."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and all(isinstance(index, int) and not isinstance(index, bool) for index in value[1:3])
        and (len(value) == 3 or isinstance(value[3], dict))
    )


class Graph:
    """Node-index bookkeeping for one Functional model's layers.

    Keras 2 counts a nested model's own construction node, so its calls are
    nodes 1, 2, ... in the config. Keras 3 does not: a nested model's calls
    are nodes 0, 1, ... in `keras_history`, while `output_layers` of a
    Functional keep the Keras 2 numbering (Keras 3 subtracts one itself,
    for Functional models only).
    """

    def __init__(self, layers: list[dict]):
        self.by_name = {entry["name"]: entry for entry in layers}
        self.shapes: dict[tuple, Any] = {}
        for entry in layers:
            self._collect_shapes(entry)

    def first_node_offset(self, name: str) -> int:
        entry = self.by_name.get(name)
        if entry is None:
            return 0
        class_name = entry.get("class_name")
        if class_name in ("Functional", "Model"):
            return 1
        if class_name == "Sequential":
            inner = (entry.get("config") or {}).get("layers") or [{}]
            first = inner[0]
            has_input = first.get("class_name") == "InputLayer" or (
                (first.get("config") or {}).get("batch_input_shape") is not None
            )
            return 1 if has_input else 0
        return 0

    def node(self, layer: dict, node: Any) -> Any:
        """One Keras 2 inbound node as Keras 3 ``{"args": ..., "kwargs": ...}``."""
        if isinstance(node, dict):
            return node  # already Keras 3
        if not isinstance(node, list) or not node:
            raise LegacyConfigError(
                f"Layer {layer.get('name')!r} ({layer.get('class_name')}): expected "
                "each inbound node to be a non-empty list of [layer, node, tensor, "
                f"kwargs] entries. Received: {str(node)[:60]}."
            )
        kwargs: dict = {}
        leaves: list = []

        def first_arg(value: Any) -> Any:
            if isinstance(value, list) and len(value) >= 3 and value[0] == "_CONSTANT_VALUE":
                if len(value) > 3 and isinstance(value[3], dict):
                    leaves.append(value)
                return value[2]
            if is_node_leaf(value):
                leaves.append(value)
                return self.tensor(value[:3], layer)
            if isinstance(value, list):
                return [first_arg(item) for item in value]
            if isinstance(value, dict):
                return {key: first_arg(item) for key, item in value.items()}
            return value

        args = first_arg(node)
        for leaf in leaves:
            if len(leaf) == 4 and leaf[3]:
                kwargs = leaf[3]
                break
        if isinstance(args, list) and len(args) == 1:
            args = args[0]
        converted = {"args": [args], "kwargs": self._kwargs(kwargs, layer)}
        _fill_unknown_shapes(converted)
        return converted

    def _kwargs(self, value: Any, layer: dict) -> Any:
        if (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and value[0] in self.by_name
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:])
        ):
            return self.tensor(value, layer)
        if isinstance(value, list):
            return [self._kwargs(item, layer) for item in value]
        if isinstance(value, dict):
            return {key: self._kwargs(item, layer) for key, item in value.items()}
        return value

    def tensor(self, ref: list, consumer: dict) -> dict:
        name, node_index, tensor_index = ref
        if name not in self.by_name:
            raise LegacyConfigError(
                f"Layer {consumer.get('name')!r} ({consumer.get('class_name')}) reads "
                f"from layer {name!r}, which is not in the model. Expected one of "
                f"{sorted(self.by_name)}."
            )
        return {
            "class_name": "__keras_tensor__",
            "config": {
                # Keras 3 swaps this placeholder for the real tensor while
                # rebuilding; shape and dtype are informative only.
                "shape": self.shapes.get((name, node_index, tensor_index)),
                "dtype": self._dtype(name),
                "keras_history": [name, node_index - self.first_node_offset(name), tensor_index],
            },
        }

    def endpoints(self, refs: Any) -> Any:
        """`input_layers`/`output_layers` in Keras 3 numbering."""
        if is_node_leaf(refs):
            name, node_index, tensor_index = refs[:3]
            entry = self.by_name.get(name, {})
            if entry.get("class_name") == "Sequential":
                node_index -= self.first_node_offset(name)
            return [name, node_index, tensor_index]
        if isinstance(refs, dict):
            return {key: self.endpoints(value) for key, value in refs.items()}
        if not isinstance(refs, list):
            raise LegacyConfigError(
                "Expected the model's input_layers/output_layers to hold [layer, node, "
                f"tensor] references. Received: {str(refs)[:60]}."
            )
        converted = [self.endpoints(value) for value in refs]
        return converted[0] if len(converted) == 1 else converted

    def _dtype(self, name: str) -> str:
        config = self.by_name[name].get("config") or {}
        dtype = config.get("dtype", "float32")
        if isinstance(dtype, dict):
            inner = dtype.get("config")
            dtype = inner.get("name", "float32") if isinstance(inner, dict) else "float32"
        if isinstance(dtype, str) and dtype.startswith("mixed_"):
            dtype = dtype.split("_", 1)[1]
        return dtype if isinstance(dtype, str) else "float32"

    def _collect_shapes(self, entry: dict) -> None:
        """Learn tensor shapes from InputLayers and consumers' build_config."""
        config = entry.get("config") or {}
        if entry.get("class_name") == "InputLayer":
            shape = config.get("batch_input_shape") or config.get("batch_shape")
            if shape is not None:
                self.shapes[(entry["name"], 0, 0)] = list(shape)
            return
        nodes = entry.get("inbound_nodes") or []
        input_shape = (entry.get("build_config") or {}).get("input_shape")
        if not nodes or input_shape is None or not isinstance(nodes[0], list):
            return
        refs = [leaf for leaf in nodes[0] if is_node_leaf(leaf)]
        if len(refs) == 1 and len(nodes[0]) == 1:
            shapes = [input_shape]
        elif len(refs) == len(nodes[0]) and _is_shape_list(input_shape, len(refs)):
            shapes = input_shape
        else:
            return
        for ref, shape in zip(refs, shapes):
            self.shapes.setdefault(tuple(ref[:3]), list(shape) if isinstance(shape, list) else None)


def _fill_unknown_shapes(args: Any) -> None:
    """Placeholders whose shape was not learned get shape [None]: Keras 3
    needs some shape to revive them and replaces them before any use."""
    if isinstance(args, dict) and args.get("class_name") == "__keras_tensor__":
        config = args.get("config")
        if isinstance(config, dict) and config.get("shape") is None:
            config["shape"] = [None]
    elif isinstance(args, dict):
        for item in args.values():
            _fill_unknown_shapes(item)
    elif isinstance(args, list):
        for item in args:
            _fill_unknown_shapes(item)


def _is_shape_list(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(item is None or isinstance(item, list) for item in value)
    )
