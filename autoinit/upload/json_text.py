"""Untrusted JSON text -> Python values, with bounds checked before parsing.

Python's ``json`` module builds the whole document before anyone can look at
it, recurses once per nesting level and accepts duplicate keys, ``NaN`` and
lone surrogates (``"\\ud800"``). `loads_json` first scans the text (strings
blanked out, then brackets counted, all at C speed) and refuses documents
nested deeper than ``max_depth`` or holding more than ``max_nodes`` objects
and arrays, so a bomb costs one scan, never the Python objects it would
become. It then parses, refusing duplicate keys, non-finite constants and
invalid Unicode, and stops as soon as ``count_object`` says enough.

Example:
    >>> loads_json(b'{"seed": 7}', max_depth=4, max_nodes=10)
    {'seed': 7}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from autoinit import keras_facts
from autoinit.errors import JsonLimitError, ModelConfigError
from autoinit.upload.formats import ASK_FOR
from autoinit.upload.limits import UploadLimits

__all__ = ["JsonLimitError", "loads_json", "parse_config_json"]

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"{": 1, "[": 1, "}": -1, "]": -1}
# A \u escape in the surrogate range; only then can parsing create one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads_json(
    data: bytes | str,
    *,
    max_depth: int,
    max_nodes: int,
    source: str = "The JSON",
    count_object: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Parse untrusted JSON within bounds.

    Args:
        data: UTF-8 bytes (a BOM is allowed) or text.
        max_depth: deepest nesting of objects and arrays (the outermost
            object is depth 1).
        max_nodes: objects plus arrays in the whole document.
        source: how messages name the document (``"The upload"``).
        count_object: called with every object as it is parsed; raise to
            stop parsing (the upload reader counts layers with it).

    Raises:
        JsonLimitError: deeper than ``max_depth`` or more than ``max_nodes``.
        ModelConfigError: invalid UTF-8 or JSON (with line and column),
            duplicate keys, ``NaN``/``Infinity``, integers of more than 4,300
            digits, unpaired surrogates.
    """
    text = _text(data, source)
    _check_shape(text, max_depth, max_nodes, source)

    def build_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ModelConfigError(
                    f"{source} has the key {key!r} twice in one object; refusing ambiguous JSON."
                )
            out[key] = value
        if count_object is not None:
            count_object(out)
        return out

    try:
        parsed = json.loads(text, object_pairs_hook=build_object, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise ModelConfigError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except RecursionError:  # the scan makes this unreachable; kept as a guard
        raise JsonLimitError(f"{source} is JSON nested too deeply.") from None
    except ModelConfigError:
        raise
    except ValueError as error:  # an integer with too many digits, NaN
        raise ModelConfigError(f"{source} cannot be parsed: {error}.") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_unicode(parsed, source)
    return parsed


def parse_config_json(data: bytes, source: str, limits: UploadLimits) -> dict[str, Any]:
    """An uploaded model config (UTF-8 JSON bytes) -> dict, within ``limits``.

    Layers are counted as the parser produces them, so a file of a million
    layers stops at layer ``max_layers + 1`` instead of being built whole.
    """
    try:
        parsed = loads_json(
            data,
            max_depth=limits.max_depth,
            max_nodes=limits.max_json_nodes,
            source=source,
            count_object=_layer_counter(limits.max_layers, source),
        )
    except JsonLimitError:
        raise
    except ModelConfigError as error:
        raise ModelConfigError(f"{error} {ASK_FOR}") from None
    if not isinstance(parsed, dict):
        raise ModelConfigError(
            f"Expected {source[:1].lower() + source[1:]} to hold a JSON object "
            f"(a model config). Received a JSON {type(parsed).__name__}."
        )
    return parsed


def _layer_counter(max_layers: int, source: str) -> Callable[[dict[str, Any]], None]:
    """Counts objects that look like layers or models (``class_name`` of a
    Keras layer or model, and a ``config``), refusing past ``max_layers``."""
    count = 0

    def count_object(obj: dict[str, Any]) -> None:
        nonlocal count
        name = obj.get("class_name")
        if not isinstance(name, str) or "config" not in obj:
            return
        module = obj.get("module")
        if name in keras_facts.MODEL_CLASSES or (
            name in keras_facts.CONVERTER_KNOWN_LAYERS
            and (
                module == "keras.layers"
                or (module is None and "module" not in obj and name not in keras_facts.INITIALIZER_CLASSES)
            )
        ):
            count += 1
            if count > max_layers:
                raise JsonLimitError(
                    f"{source} has more than {max_layers} layers (counting nested ones); refusing it."
                )

    return count_object


def _text(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError as error:
            raise ModelConfigError(
                f"{source} holds invalid Unicode: character {error.start} is an unpaired surrogate."
            ) from None
        return data
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelConfigError(
            f"{source} is not UTF-8 text: byte {error.start} (0x{data[error.start]:02x}) cannot be decoded."
        ) from None


def _check_shape(text: str, max_depth: int, max_nodes: int, source: str) -> None:
    """Count objects/arrays and the nesting depth without building anything."""
    opening = text.count("{") + text.count("[")
    if opening <= min(max_depth, max_nodes):
        return  # neither bound can be exceeded
    structure = _STRING.sub("", text)
    nodes = structure.count("{") + structure.count("[")
    if nodes > max_nodes:
        raise JsonLimitError(f"{source} holds {nodes:,} JSON objects and arrays; the limit is {max_nodes:,}.")
    brackets = _NOT_BRACKET.sub("", structure)
    depth = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)
    if depth > max_depth:
        raise JsonLimitError(f"{source} is JSON nested too deeply: {depth} levels; the limit is {max_depth}.")


def _refuse_constant(name: str) -> None:
    raise ModelConfigError(f"{name} is not a JSON number; expected finite numbers.")


def _check_unicode(value: Any, source: str) -> None:
    """Refuse strings holding unpaired surrogates (from ``\\ud800`` escapes)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts: tuple[str, ...] = (item,)
        elif isinstance(item, dict):
            texts = tuple(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ModelConfigError(
                    f"{source} holds invalid Unicode: the string {text[:40]!r} "
                    "has an unpaired surrogate escape (\\ud800-\\udfff)."
                ) from None
