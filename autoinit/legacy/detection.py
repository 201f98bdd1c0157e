"""Whether a parsed config was written by tf.keras 2."""

from __future__ import annotations

from collections.abc import Iterator

from autoinit import keras_facts

__all__ = ["is_legacy_config"]

_MODEL_CLASSES = keras_facts.MODEL_CLASSES
_WRAPPED_LAYER_KEYS = ("layer", "backward_layer", "cell")


def is_legacy_config(config: dict) -> bool:
    """Whether `config` (a parsed `model.to_json()`) was written by tf.keras 2.

    True when the top level says ``keras_version`` 2.x, when a layer lacks
    the ``module`` key, when an inbound node is a Keras 2 list, or when a
    model class comes from `tf_keras`/`keras.engine`.
    """
    if not isinstance(config, dict):
        return False
    if str(config.get("keras_version", "")).startswith("2."):
        return True
    return any(_looks_legacy(layer) for layer in _walk_layers(config))


def _looks_legacy(layer: dict) -> bool:
    if "module" not in layer or layer.get("class_name") == "Model":
        return True
    module = layer.get("module") or ""
    if layer.get("class_name") in _MODEL_CLASSES and (
        module.startswith("tf_keras") or ".engine" in module
    ):
        return True
    return any(isinstance(node, list) for node in layer.get("inbound_nodes", ()))


def _walk_layers(obj: dict) -> Iterator[dict]:
    """Yield `obj` and every layer config nested in it, depth first."""
    yield obj
    inner = obj.get("config")
    if not isinstance(inner, dict):
        return
    for layer in inner.get("layers", ()) or ():
        if isinstance(layer, dict):
            yield from _walk_layers(layer)
    for key in _WRAPPED_LAYER_KEYS:
        if isinstance(inner.get(key), dict):
            yield from _walk_layers(inner[key])
