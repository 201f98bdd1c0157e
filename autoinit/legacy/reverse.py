"""Write the initializers AutoInit chose back into a tf.keras 2 config."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from autoinit.errors import LegacyConfigError
from autoinit.keras_facts import MODEL_CLASSES as _MODEL_CLASSES
from autoinit.keras_facts import WRAPPED_LAYER_KEYS

__all__ = ["INITIALIZER_ATTRIBUTES", "to_legacy_config"]


# Keras 2 initializer arguments, for writing Keras 3 initializers back.
_LEGACY_INITIALIZER_ARGS = {
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "GlorotUniform": ("seed",),
    "GlorotNormal": ("seed",),
    "HeUniform": ("seed",),
    "HeNormal": ("seed",),
    "LecunUniform": ("seed",),
    "LecunNormal": ("seed",),
    "RandomNormal": ("mean", "stddev", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "RandomUniform": ("minval", "maxval", "seed"),
    "Orthogonal": ("gain", "seed"),
    "Identity": ("gain",),
    "Constant": ("value",),
    "Zeros": (),
    "Ones": (),
}
_KERAS3_INITIALIZER_ALIASES = {
    "OrthogonalInitializer": "Orthogonal",
    "IdentityInitializer": "Identity",
}
INITIALIZER_ATTRIBUTES = (
    "kernel_initializer",
    "bias_initializer",
    "embeddings_initializer",
    "depthwise_initializer",
    "pointwise_initializer",
    "recurrent_initializer",
)


def to_legacy_config(keras3_config: dict, legacy_template: dict) -> dict:
    """Write the initializers of a Keras 3 config into the legacy original.

    Layers are matched by name, nested models by their path ("outer/inner"),
    wrapped layers (Bidirectional, TimeDistributed) by their slot. Every
    initializer in `INITIALIZER_ATTRIBUTES` that both configs hold is
    replaced by the Keras 3 one written in tf.keras 2 style, e.g.
    ``{"class_name": "VarianceScaling", "config": {"scale": s, "mode":
    "fan_in", "distribution": "truncated_normal", "seed": n}}``. Nothing else
    in the template changes.

    Raises:
        LegacyConfigError: a Keras 3 layer holding an initializer has no
            counterpart in the template, or an initializer has no tf.keras 2
            equivalent.
    """
    result = copy.deepcopy(legacy_template)
    legacy_layers = dict(_layers_by_path(result))
    for path, layer in _layers_by_path(keras3_config):
        config = layer.get("config") or {}
        attributes = [a for a in INITIALIZER_ATTRIBUTES if isinstance(config.get(a), (dict, str))]
        if not attributes:
            continue
        target = legacy_layers.get(path)
        if target is None and path.endswith(":backward_layer"):
            target = _legacy_backward_layer(legacy_layers, path, config, attributes)
            if target is _SAME_AS_FORWARD:
                continue
        if target is None:
            raise LegacyConfigError(
                f"Layer {path!r} ({layer.get('class_name')}) of the Keras 3 config "
                "has no counterpart in the legacy template; expected both configs "
                f"to describe the same model. Template layers: {sorted(legacy_layers)}."
            )
        target_config = target.setdefault("config", {})
        for attribute in attributes:
            if attribute in target_config:
                target_config[attribute] = _legacy_initializer(
                    config[attribute], target_config[attribute], path, attribute
                )
    return result


_SAME_AS_FORWARD: dict = {}


def _legacy_backward_layer(
    legacy_layers: dict[str, dict], path: str, config: dict, attributes: list[str]
) -> dict | None:
    """A tf.keras 2 Bidirectional without `backward_layer` mirrors its forward
    layer. Keep it so when the Keras 3 backward initializers equal the forward
    ones; otherwise write an explicit `backward_layer` into the template."""
    wrapper = legacy_layers.get(path.rsplit(":", 1)[0])
    forward = legacy_layers.get(path.rsplit(":", 1)[0] + ":layer")
    if wrapper is None or forward is None:
        return None
    forward_config = forward.get("config") or {}
    if all(
        _legacy_initializer(config[a], forward_config.get(a), path, a) == forward_config.get(a)
        for a in attributes
        if a in forward_config
    ):
        return _SAME_AS_FORWARD
    backward = copy.deepcopy(forward)
    backward_config = backward.setdefault("config", {})
    backward_config["go_backwards"] = not forward_config.get("go_backwards", False)
    # tf.keras prefixes "forward_"/"backward_" itself: keep the plain name.
    wrapper.setdefault("config", {})["backward_layer"] = backward
    legacy_layers[path] = backward
    return backward


def _layers_by_path(model: dict) -> Iterator[tuple[str, dict]]:
    """Yield (path, layer config) for every layer of a model config, depth
    first: nested models' layers as ``outer/inner``, wrapped layers as
    ``wrapper:layer``. No recursion: the template comes from an upload."""
    stack: list[tuple[str, Any]] = [("", layer) for layer in reversed(_model_layers(model))]
    while stack:
        prefix, layer = stack.pop()
        if not isinstance(layer, dict):
            continue
        if prefix.endswith(":"):  # a wrapped layer: its path is the prefix's key
            path = prefix[:-1]
        else:
            inner = layer.get("config")
            name = layer.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
            path = prefix + str(name)
        yield path, layer
        children: list[tuple[str, Any]] = []
        is_model = isinstance(layer.get("class_name"), str) and layer["class_name"] in _MODEL_CLASSES
        if is_model and not prefix.endswith(":"):
            children += [(path + "/", child) for child in _model_layers(layer)]
        config = layer.get("config")
        if isinstance(config, dict):
            children += [
                (f"{path}:{key}:", config[key])
                for key in WRAPPED_LAYER_KEYS
                if isinstance(config.get(key), dict)
            ]
        stack.extend(reversed(children))


def _model_layers(model: dict) -> list[Any]:
    config = model.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    return layers if isinstance(layers, list) else []


def _legacy_initializer(value: Any, template: Any, path: str, attribute: str) -> Any:
    """A Keras 3 initializer config in tf.keras 2 style (module kept only if
    the template's initializer had one)."""
    if isinstance(value, str):
        return value
    class_name = _KERAS3_INITIALIZER_ALIASES.get(value.get("class_name"), value.get("class_name"))
    if class_name not in _LEGACY_INITIALIZER_ARGS:
        raise LegacyConfigError(
            f"Layer {path!r}: {attribute} is {class_name!r}, which tf.keras 2 "
            f"lacks; expected one of {sorted(_LEGACY_INITIALIZER_ARGS)}."
        )
    source = value.get("config") or {}
    config = {}
    for argument in _LEGACY_INITIALIZER_ARGS[class_name]:
        if argument not in source:
            continue
        item = source[argument]
        if argument == "seed" and not (isinstance(item, int) or item is None):
            item = None  # a Keras 3 SeedGenerator has no tf.keras 2 form
        if isinstance(item, dict) and item.get("class_name") == "__numpy__":
            item = (item.get("config") or {}).get("value")
        config[argument] = item
    legacy = {"class_name": class_name, "config": config}
    if isinstance(template, dict) and "module" in template:
        legacy = {"module": "keras.initializers", **legacy, "registered_name": None}
    return legacy
