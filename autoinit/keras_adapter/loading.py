"""Turns a model, a config dict or a JSON string into a built Keras model.

A config may also be a keras_hub backbone's (``BertBackbone``, ... as
`autoinit.keras_facts.HUB_BACKBONES` lists them: arguments, not layers), and
a model's layers may be keras_hub layers. ``keras_hub`` is imported only when
a config names it (it imports TensorFlow), which registers its classes under
the names the config gives (``"keras_hub>BertBackbone"``).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import re
from collections.abc import Mapping
from typing import Any

import keras

from autoinit.errors import ModelConfigError
from autoinit.keras_facts import HUB_BACKBONES, HUB_PACKAGE, MODEL_CLASSES, is_hub_backbone

__all__ = ["copy_model", "load_model", "normalize_config"]


def normalize_config(config: Any) -> dict:
    """A full serialized model config (``{"class_name", "config", ...}``).

    Accepts ``model.to_json()`` output (parsed or not), ``serialize_keras_object``
    output, a bare ``model.get_config()`` dict, and tf.keras 2 legacy configs
    (converted).
    """
    if isinstance(config, (bytes, bytearray)):
        config = config.decode("utf-8", errors="strict")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as error:
            raise ModelConfigError(
                f"Expected a model config as JSON. Received invalid JSON: {error.msg} "
                f"at line {error.lineno}, column {error.colno}."
            ) from None
    if not isinstance(config, Mapping):
        raise ModelConfigError(
            f"Expected a keras.Model, a config dict or a JSON string. Received: {type(config).__name__}"
        )
    config = dict(config)
    if "class_name" not in config and "layers" in config:
        kind = "Functional" if "input_layers" in config else "Sequential"
        config = {"module": "keras", "class_name": kind, "config": config, "registered_name": kind}
    class_name = config.get("class_name")
    backbone = is_hub_backbone(config.get("module"), class_name)
    if class_name not in MODEL_CLASSES and not backbone:
        backbones = sorted(frozenset().union(*HUB_BACKBONES.values()))
        raise ModelConfigError(
            f"Expected a model config with class_name one of {sorted(MODEL_CLASSES)}, or a keras_hub "
            f"backbone ({', '.join(backbones)}). Received: class_name={class_name!r}"
        )
    if not isinstance(config.get("config"), Mapping):
        raise ModelConfigError(
            "Expected the model config to have a 'config' object. Received: "
            + repr(type(config.get("config")).__name__)
        )
    if backbone:
        return config
    from autoinit.legacy import convert_legacy_config, is_legacy_config

    if is_legacy_config(config):
        config = convert_legacy_config(config)
    return config


def load_model(model_or_config: Any, custom_objects: Mapping[str, Any] | None = None) -> keras.Model:
    """A built ``keras.Model`` from a model, a config dict or a JSON string."""
    if isinstance(model_or_config, keras.Model):
        return model_or_config
    # Keras pops keys out of the dict it deserializes: never hand it the caller's.
    config = copy.deepcopy(normalize_config(model_or_config))
    _import_keras_hub_if_named(config)
    try:
        with keras.saving.custom_object_scope(dict(custom_objects or {})):
            model = keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
    except ModelConfigError:
        raise
    except Exception as error:  # Keras raises many types; name what failed
        message = _one_line(error)
        raise ModelConfigError(
            f"Could not build a Keras model from the config "
            f"({config.get('class_name')} '{config.get('config', {}).get('name', '?')}'): {message}"
        ) from error
    if not isinstance(model, keras.Model):
        raise ModelConfigError(
            f"Expected the config to describe a keras.Model. Received: {type(model).__name__}"
        )
    return model


def copy_model(model: keras.Model) -> keras.Model:
    """A new model with ``model``'s architecture and weights.

    A keras_hub backbone is rebuilt from its own config (its constructor's
    arguments), as Keras' ``clone_model`` documentation advises for classes
    that write their own config: ``clone_model`` would rebuild each inner
    layer from that layer's config, which some keras_hub layers cannot
    round-trip (ViT's patching layer, Llama's decoder blocks in keras-hub 0.32).
    """
    if is_hub_backbone(type(model).__module__, type(model).__name__):
        copied = type(model).from_config(model.get_config())
    else:
        copied = keras.models.clone_model(model)
    copied.set_weights(model.get_weights())
    return copied


def _hub_class_named(config: Any) -> str | None:
    """The first class from keras_hub a config names (``module`` ``keras_hub.*``), else None."""
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, Mapping):
            module = value.get("module")
            if isinstance(module, str) and module.split(".")[0] == HUB_PACKAGE:
                return str(value.get("class_name"))
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _import_keras_hub_if_named(config: Any) -> None:
    """Import keras_hub (which registers its classes) when the config names
    one of them; say what to install when it is missing."""
    class_name = _hub_class_named(config)
    if class_name is None:
        return
    if importlib.util.find_spec(HUB_PACKAGE) is None:
        raise ModelConfigError(
            f"The config uses keras_hub's {class_name}, and keras_hub is not installed here. "
            "Install it with the `hub` extra: pip install 'autoinit[hub]'."
        )
    importlib.import_module(HUB_PACKAGE)


def _one_line(error: Exception, limit: int = 600) -> str:
    """Keras' multi-line, coloured error as one plain line that keeps the cause
    (its first line is often only "Exception encountered when calling ...")."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))
    text = " ".join(
        line.strip() for line in text.splitlines() if line.strip() and set(line.strip()) != {"\u2022"}
    )
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
