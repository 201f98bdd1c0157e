"""Turns a model, a config dict or a JSON string into a built Keras model."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import keras

from autoinit.errors import ModelConfigError
from autoinit.keras_facts import MODEL_CLASSES

__all__ = ["load_model", "normalize_config"]


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
    if class_name not in MODEL_CLASSES:
        raise ModelConfigError(
            f"Expected a model config with class_name one of {sorted(MODEL_CLASSES)}. "
            f"Received: class_name={class_name!r}"
        )
    if not isinstance(config.get("config"), Mapping):
        raise ModelConfigError(
            "Expected the model config to have a 'config' object. Received: "
            + repr(type(config.get("config")).__name__)
        )
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


def _one_line(error: Exception, limit: int = 600) -> str:
    """Keras' multi-line, coloured error as one plain line that keeps the cause
    (its first line is often only "Exception encountered when calling ...")."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(error))
    text = " ".join(
        line.strip() for line in text.splitlines() if line.strip() and set(line.strip()) != {"\u2022"}
    )
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
