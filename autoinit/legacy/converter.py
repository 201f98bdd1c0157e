"""tf.keras 2 config -> Keras 3 config, dict in, dict out."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from autoinit import keras_facts
from autoinit.errors import LegacyConfigError, ModelConfigError, UnsafeConfigError
from autoinit.keras_facts import WRAPPED_LAYER_KEYS
from autoinit.legacy.arguments import apply_argument_rules
from autoinit.legacy.graph import Graph
from autoinit.upload.structure import check_model_structure

__all__ = ["KNOWN_LAYERS", "convert_legacy_config"]

#: Layer classes the converter rewrites (the rest is refused).
KNOWN_LAYERS = keras_facts.CONVERTER_KNOWN_LAYERS
_KERAS_OBJECTS = {
    "initializers": keras_facts.INITIALIZER_CLASSES,
    "regularizers": keras_facts.REGULARIZER_CLASSES,
    "constraints": keras_facts.CONSTRAINT_CLASSES,
}
_KERAS_ACTIVATIONS = keras_facts.ACTIVATIONS
_KERAS_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow.python.keras", "tensorflow.keras")
_TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})


def convert_legacy_config(config: dict, custom_objects: Mapping[str, Any] | None = None) -> dict:
    """Rewrite a tf.keras 2 model config as a Keras 3 one.

    Args:
        config: a parsed `model.to_json()` of a tf.keras 2 Functional or
            Sequential model (``{"class_name": ..., "config": ...}``).
        custom_objects: names of user classes or functions allowed in the
            config; any class outside Keras is refused unless named here.
            Pass the same mapping to Keras when deserializing.

    Returns:
        A new dict loadable by `keras.models.model_from_json(json.dumps(...))`.

    Raises:
        UnsafeConfigError: a Lambda layer, or a class outside Keras that
            `custom_objects` does not name.
        LegacyConfigError: anything else Keras 3 cannot express.
    """
    try:
        check_model_structure(config)
    except ModelConfigError as error:
        raise LegacyConfigError(str(error)) from None
    converter = _Converter(dict(custom_objects or {}))
    return converter.layer(copy.deepcopy(config))


class _Converter:
    """Holds `custom_objects` while walking one config."""

    def __init__(self, custom_objects: dict[str, Any]):
        self.custom_objects = custom_objects

    # Layers ------------------------------------------------------------------

    def layer(self, layer: dict) -> dict:
        """Convert one layer or model config (without its inbound nodes)."""
        class_name = layer.get("class_name")
        inner = layer.get("config")
        name = layer.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
        if not isinstance(class_name, str) or not isinstance(inner, (dict, type(None))):
            raise LegacyConfigError(
                f"Layer {_short(name)}: expected a string class_name and a config "
                f"object. Received: class_name={_short(class_name)}, "
                f"config={_short(inner)}."
            )
        if class_name == "Lambda":
            raise UnsafeConfigError(f"Lambda layers carry Python code and are refused (layer {name!r}).")
        if class_name in _TF_OP_LAYERS:
            function = (inner or {}).get("function")
            raise LegacyConfigError(
                f"Layer {name!r} ({class_name}) wraps the TensorFlow op "
                f"{function!r}, which Keras 3 cannot load; expected Keras layers "
                "only. Rewrite the op as a Keras layer before converting."
            )
        if class_name in ("Functional", "Model"):
            return self.functional(layer)
        if class_name == "Sequential":
            return self.sequential(layer)
        custom_key = self._custom_key(class_name, layer.get("registered_name"))
        if custom_key is not None:
            return {**layer, "registered_name": custom_key}
        if class_name not in KNOWN_LAYERS and class_name != "ThresholdedReLU":
            raise UnsafeConfigError(self._not_keras("Layer", name, class_name, layer.get("module")))
        if not _is_keras_module(layer.get("module")):
            raise UnsafeConfigError(self._not_keras("Layer", name, class_name, layer.get("module")))
        config = self.arguments(class_name, name, dict(inner or {}))
        if class_name == "ThresholdedReLU":
            class_name = "ReLU"
            theta = config.pop("theta", 1.0)
            config.update(threshold=theta, negative_slope=0.0, max_value=None)
        return {
            "module": "keras.layers",
            "class_name": class_name,
            "config": config,
            "registered_name": None,
        }

    def arguments(self, class_name: str, name: str, config: dict) -> dict:
        """Apply the argument rules and convert nested Keras objects."""
        apply_argument_rules(class_name, name, config)
        for key, value in list(config.items()):
            if key == "dtype" and class_name != "InputLayer":
                config[key] = _dtype_policy(value)
            elif key.endswith("_initializer"):
                config[key] = self.keras_object(value, "initializers", name, key)
            elif key.endswith("_regularizer"):
                config[key] = self.keras_object(value, "regularizers", name, key)
            elif key.endswith("_constraint"):
                config[key] = self.keras_object(value, "constraints", name, key)
            elif key in ("activation", "recurrent_activation"):
                config[key] = self.activation(value, name, key)
            elif key in WRAPPED_LAYER_KEYS and isinstance(value, dict):
                config[key] = self.layer(value)
            elif key == "cells" and isinstance(value, list):
                config[key] = [self.layer(cell) for cell in value]
        return config

    def keras_object(self, value: Any, kind: str, layer_name: str, key: str) -> Any:
        """Convert an initializer/regularizer/constraint config."""
        if value is None or isinstance(value, (str, int, float)):
            return value
        if not isinstance(value, dict) or "class_name" not in value:
            raise LegacyConfigError(
                f"Layer {layer_name!r}: expected {key} to be a config dict with "
                f"'class_name'. Received: {_short(value)}."
            )
        class_name = value["class_name"]
        if not isinstance(class_name, str) or not isinstance(value.get("config"), (dict, type(None))):
            raise LegacyConfigError(
                f"Layer {layer_name!r}: expected {key} to have a string class_name "
                f"and a config object. Received: {_short(value)}."
            )
        custom_key = self._custom_key(class_name, value.get("registered_name"))
        if custom_key is not None:
            return {**value, "registered_name": custom_key}
        if class_name not in _KERAS_OBJECTS[kind] or not _is_keras_module(value.get("module")):
            raise UnsafeConfigError(
                f"Layer {layer_name!r}: {key} is {class_name!r} from module "
                f"{value.get('module')!r}, not one of Keras' {kind} "
                f"{sorted(_KERAS_OBJECTS[kind])}; pass it in custom_objects to allow it."
            )
        config = {k: v for k, v in (value.get("config") or {}).items() if k != "dtype"}
        if class_name == "VarianceScaling" and config.get("distribution") == "normal":
            config["distribution"] = "truncated_normal"
        return {
            "module": f"keras.{kind}",
            "class_name": class_name,
            "config": config,
            "registered_name": None,
        }

    def activation(self, value: Any, layer_name: str, key: str) -> Any:
        """Keep Keras activations; refuse unknown functions."""
        if value is None:
            return "linear"
        if isinstance(value, dict):
            return self.layer(value)
        if isinstance(value, str) and (value in _KERAS_ACTIVATIONS or value in self.custom_objects):
            return value
        raise UnsafeConfigError(
            f"Layer {layer_name!r}: {key}={_short(value)} is not a Keras activation "
            "(expected one of keras.activations); pass it in custom_objects to allow it."
        )

    # Models ------------------------------------------------------------------

    def functional(self, layer: dict) -> dict:
        """Convert a Functional model config, its graph included."""
        config = layer["config"]
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise LegacyConfigError(
                f"Model {config.get('name')!r} (Functional): expected 'layers' "
                f"to be a list. Received: {type(layers).__name__}."
            )
        graph = Graph(layers)
        converted_layers = []
        for entry in layers:
            converted = self.layer(entry)
            converted["name"] = entry["name"]
            converted["inbound_nodes"] = [graph.node(entry, node) for node in entry.get("inbound_nodes", ())]
            converted_layers.append(converted)
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {
                "name": config.get("name"),
                "trainable": config.get("trainable", True),
                "layers": converted_layers,
                "input_layers": graph.endpoints(config.get("input_layers", [])),
                "output_layers": graph.endpoints(config.get("output_layers", [])),
            },
            "registered_name": "Functional",
        }

    def sequential(self, layer: dict) -> dict:
        """Convert a Sequential model config; `batch_input_shape` on its first
        layer becomes an explicit InputLayer, as Keras 3 expects."""
        config = layer["config"]
        entries = list(config.get("layers", ()))
        converted = []
        if entries and entries[0].get("class_name") != "InputLayer":
            first = entries[0].get("config") or {}
            if first.get("batch_input_shape") is not None:
                converted.append(
                    _input_layer(
                        f"{first.get('name', 'sequential')}_input",
                        first["batch_input_shape"],
                        first.get("dtype") if isinstance(first.get("dtype"), str) else "float32",
                    )
                )
        converted.extend(self.layer(entry) for entry in entries)
        new_config = {
            "name": config.get("name"),
            "trainable": config.get("trainable", True),
            "layers": converted,
        }
        if config.get("build_input_shape") is not None:
            new_config["build_input_shape"] = config["build_input_shape"]
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": new_config,
            "registered_name": None,
        }

    # Helpers -------------------------------------------------------------------

    def _custom_key(self, class_name: str, registered_name: str | None) -> str | None:
        for key in (registered_name, class_name):
            if isinstance(key, str) and key in self.custom_objects:
                return key
        return None

    @staticmethod
    def _not_keras(what: str, name: str, class_name: str, module: str | None) -> str:
        return (
            f"{what} {name!r} has class {class_name!r} from module {module!r}, "
            "which is not a Keras class this converter knows; pass it in "
            "custom_objects to allow it."
        )


def _is_keras_module(module: str | None) -> bool:
    """Old configs carry no module; new ones name a Keras package."""
    return (
        module is None
        or isinstance(module, str)
        and any(module == prefix or module.startswith(prefix + ".") for prefix in _KERAS_MODULE_PREFIXES)
    )


def _dtype_policy(value: Any) -> Any:
    """Keras 2 `"float32"` or `{"class_name": "Policy", ...}` -> DTypePolicy dict."""
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict) and value.get("class_name") in ("Policy", "DTypePolicy"):
        inner = value.get("config")
        name = inner.get("name", "float32") if isinstance(inner, dict) else "float32"
        if not isinstance(name, str):
            raise LegacyConfigError(f"Expected a dtype policy with a string name. Received: {_short(value)}.")
    else:
        return value
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": name},
        "registered_name": None,
    }


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _input_layer(name: str, batch_shape: list, dtype: str) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": batch_shape,
            "dtype": dtype,
            "sparse": False,
            "ragged": False,
            "name": name,
        },
        "registered_name": None,
    }
