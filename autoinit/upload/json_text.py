"""UTF-8 JSON bytes -> a dict, refusing what JSON should not hold."""

from __future__ import annotations

import json
from typing import Any

from autoinit.errors import ModelConfigError
from autoinit.upload.formats import ASK_FOR

__all__ = ["parse_json_object"]


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ModelConfigError(
                f"The JSON has the key {key!r} twice in one object; refusing "
                "ambiguous JSON."
            )
        out[key] = value
    return out


def parse_json_object(data: bytes, source: str) -> dict[str, Any]:
    """UTF-8 JSON bytes -> dict, with errors that give line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelConfigError(
            f"{source} is not UTF-8 text: byte {error.start} "
            f"(0x{data[error.start]:02x}) cannot be decoded. {ASK_FOR}"
        ) from None
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ModelConfigError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}. {ASK_FOR}"
        ) from None
    except RecursionError:
        raise ModelConfigError(f"{source} is JSON nested too deeply.") from None
    except ModelConfigError:
        raise
    except ValueError as error:  # e.g. an integer with too many digits
        raise ModelConfigError(f"{source} cannot be parsed: {error}.") from None
    if not isinstance(parsed, dict):
        raise ModelConfigError(
            f"Expected {source[:1].lower() + source[1:]} to hold a JSON object (a model config). "
            f"Received a JSON {type(parsed).__name__}."
        )
    return parsed
