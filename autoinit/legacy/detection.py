"""Whether a parsed config was written by tf.keras 2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from autoinit import keras_facts
from autoinit.keras_facts import WRAPPED_LAYER_KEYS

__all__ = ["is_legacy_config"]

_MODEL_CLASSES = keras_facts.MODEL_CLASSES


def is_legacy_config(config: Any) -> bool:
    """Whether `config` (a parsed `model.to_json()`) was written by tf.keras 2.

    True when the top level says ``keras_version`` 2.x, when a layer lacks
    the ``module`` key, when an inbound node is a Keras 2 list, or when a
    model class comes from `tf_keras`/`keras.engine`. Values of the wrong
    type are skipped (the converter refuses them with their path).
    """
    if not isinstance(config, dict):
        return False
    version = config.get("keras_version")
    if isinstance(version, str) and version.startswith("2."):
        return True
    return any(_looks_legacy(layer) for layer in _walk_layers(config))


def _looks_legacy(layer: dict) -> bool:
    if "module" not in layer or layer.get("class_name") == "Model":
        return True
    module = layer.get("module")
    if (
        isinstance(layer.get("class_name"), str)
        and layer.get("class_name") in _MODEL_CLASSES
        and isinstance(module, str)
        and (module.startswith("tf_keras") or ".engine" in module)
    ):
        return True
    nodes = layer.get("inbound_nodes")
    return isinstance(nodes, list) and any(isinstance(node, list) for node in nodes)


def _walk_layers(obj: dict) -> Iterator[dict]:
    """Yield `obj` and every layer config nested in it, depth first, without
    recursion (the config may be nested deeply)."""
    stack = [obj]
    while stack:
        entry = stack.pop()
        yield entry
        inner = entry.get("config")
        if not isinstance(inner, dict):
            continue
        children: list[Any] = []
        layers = inner.get("layers")
        if isinstance(layers, list):
            children.extend(layers)
        children.extend(inner.get(key) for key in WRAPPED_LAYER_KEYS)
        stack.extend(child for child in reversed(children) if isinstance(child, dict))
