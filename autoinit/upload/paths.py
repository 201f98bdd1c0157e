"""JSON paths and short quotes for messages about a place in a config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoinit.upload.allow_list import is_identifier

__all__ = ["Holder", "Path", "format_path", "object_name", "short", "where"]

Path = tuple[str | int, ...]
Holder = tuple[str, str] | None  # (layer name, class name) of the holder


def format_path(path: Path) -> str:
    if not path:
        return "the top level"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif is_identifier(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def where(path: Path, layer: Holder) -> str:
    place = f"at {format_path(path)}"
    if layer is not None:
        place += f", in layer {layer[0]!r} ({layer[1]})"
    return f"({place})"


def object_name(obj: Mapping[str, Any]) -> str | None:
    inner = obj.get("config")
    name = inner.get("name") if isinstance(inner, Mapping) else None
    if name is None:
        name = obj.get("name")
    return name if isinstance(name, str) else None


def short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
