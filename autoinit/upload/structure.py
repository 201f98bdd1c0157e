"""Check the shape of a model config before anything reads it.

The tf.keras 2 converter and the parameter bound read keys such as
``config.layers[i].inbound_nodes``; a config from an upload may hold anything
there (a number, ``null``, a list of strings). `check_model_structure` walks
the model tree without recursion and refuses, naming the JSON path, any value
of the wrong type they would read, so neither ever meets one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from autoinit.errors import ModelConfigError
from autoinit.keras_facts import MODEL_CLASSES, WRAPPED_LAYER_KEYS, is_hub_backbone

__all__ = ["MAX_DEPTH", "check_model_structure", "format_path"]

#: Deepest JSON nesting accepted here (the converter copies and recurses;
#: uploads are held to `UploadLimits.max_depth` while parsing).
MAX_DEPTH = 128

_Path = tuple[str | int, ...]


def format_path(path: _Path) -> str:
    """``config.layers[2].config`` for ``("config", "layers", 2, "config")``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the top level"


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _fail(expected: str, value: Any, path: _Path) -> ModelConfigError:
    return ModelConfigError(
        f"Expected {expected} at {format_path(path)}. Received: "
        + ("null." if value is None else f"{_type(value)} {_short(value)}.")
    )


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_model_structure(config: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a model config whose parts have the wrong JSON types.

    A keras_hub backbone (`autoinit.keras_facts.HUB_BACKBONES`) has no
    layers: only its own entry is checked.

    Checks, for the model and every nested model and wrapped layer: the
    types of ``class_name``, ``module``, ``registered_name``, ``config``,
    ``build_config``, ``layers``, ``inbound_nodes`` and the model's
    ``input_layers``/``output_layers``; that every layer of a Functional
    model has a ``name``; and that nothing is nested deeper than ``max_depth``.

    Raises:
        ModelConfigError: the first problem found, with its JSON path.
    """
    _check_depth(config, max_depth)
    if not isinstance(config, dict):
        raise _fail("a model config (a JSON object)", config, ())
    if "class_name" not in config:
        raise ModelConfigError(
            "Expected a model config dict with 'class_name' and 'config' keys (a "
            f"parsed model.to_json()). Received keys {_short(sorted(config)[:10])}."
        )
    if is_hub_backbone(config.get("module"), config.get("class_name")):
        _check_entry(config, (), False)  # its config holds arguments, not layers
        return
    if not _is_model_class(config.get("class_name")):
        raise ModelConfigError(
            "Expected a Functional or Sequential model config. "
            f"Received: class_name={_short(config.get('class_name'))}."
        )
    for entry, path, in_functional in _entries(config):
        _check_entry(entry, path, in_functional)


def _is_model_class(value: Any) -> bool:
    return isinstance(value, str) and value in MODEL_CLASSES


def _check_depth(config: Any, max_depth: int) -> None:
    stack = [(config, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise ModelConfigError(f"The config is nested deeper than {max_depth} levels; refusing it.")
        stack.extend((child, depth + 1) for child in children)


def _entries(config: dict) -> Iterator[tuple[Any, _Path, bool]]:
    """Every model and layer entry: (entry, path, is it a Functional's layer)."""
    stack: list[tuple[Any, _Path, bool]] = [(config, (), False)]
    while stack:
        entry, path, in_functional = stack.pop()
        yield entry, path, in_functional
        inner = entry.get("config")
        if entry.get("class_name") in MODEL_CLASSES:
            layers = inner.get("layers")
            functional = entry.get("class_name") != "Sequential"
            stack.extend(
                (layer, path + ("config", "layers", index), functional)
                for index, layer in reversed(list(enumerate(layers)))
            )
            continue
        if not isinstance(inner, dict):
            continue
        for key in WRAPPED_LAYER_KEYS:
            if inner.get(key) is not None:
                stack.append((inner[key], path + ("config", key), False))
        cells = inner.get("cells")
        if isinstance(cells, list):
            stack.extend((cell, path + ("config", "cells", index), False) for index, cell in enumerate(cells))


def _check_entry(entry: Any, path: _Path, in_functional: bool) -> None:
    if not isinstance(entry, dict):
        raise _fail("a layer config (a JSON object)", entry, path)
    class_name = entry.get("class_name")
    if not isinstance(class_name, str):
        raise _fail("class_name to be a string", class_name, path + ("class_name",))
    for key in ("module", "registered_name"):
        if not isinstance(entry.get(key), (str, type(None))):
            raise _fail(f"{key} to be a string or null", entry[key], path + (key,))
    if not isinstance(entry.get("config"), dict):
        raise _fail(f"config of {class_name} to be a JSON object", entry.get("config"), path + ("config",))
    if not isinstance(entry.get("build_config"), (dict, type(None))):
        raise _fail("build_config to be a JSON object", entry["build_config"], path + ("build_config",))
    if in_functional:
        _check_functional_layer(entry, class_name, path)
    inner = entry["config"]
    for key in WRAPPED_LAYER_KEYS:
        if not isinstance(inner.get(key), (dict, type(None))):
            raise _fail(f"{key} to be a layer config", inner[key], path + ("config", key))
    if not isinstance(inner.get("cells", []), list):
        raise _fail("cells to be a list of layer configs", inner["cells"], path + ("config", "cells"))
    for key in ("batch_input_shape", "batch_shape"):
        if not isinstance(inner.get(key), (list, type(None))):
            raise _fail(f"{key} to be a list", inner[key], path + ("config", key))
    if class_name in MODEL_CLASSES:
        _check_model(inner, class_name, path)


def _check_functional_layer(entry: dict, class_name: str, path: _Path) -> None:
    if not isinstance(entry.get("name"), str):
        raise ModelConfigError(
            f"Expected every layer of a Functional model to have a 'name' (a string). "
            f"The {class_name} at {format_path(path)} has {_short(entry.get('name'))}."
        )
    nodes = entry.get("inbound_nodes", [])
    if not isinstance(nodes, list):
        raise _fail("inbound_nodes to be a list", nodes, path + ("inbound_nodes",))
    for index, node in enumerate(nodes):
        if not isinstance(node, (list, dict)) or not node:
            raise _fail(
                "each inbound node to be a non-empty list or object", node, path + ("inbound_nodes", index)
            )


def _check_model(inner: dict, class_name: str, path: _Path) -> None:
    layers = inner.get("layers")
    if not isinstance(layers, list):
        raise _fail(f"the {class_name} model's layers to be a list", layers, path + ("config", "layers"))
    if class_name == "Sequential":
        return
    for key in ("input_layers", "output_layers"):
        if not isinstance(inner.get(key, []), (list, dict)):
            raise _fail(f"{key} to be a list", inner[key], path + ("config", key))
