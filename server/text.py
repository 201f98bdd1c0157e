"""Text that cannot be encoded: unpaired UTF-16 surrogates.

JSON escapes such as ``"\\ud800"`` decode to Python strings that hold a lone
surrogate, which no UTF-8 encoder accepts: stored in a job and echoed back,
such a string made every answer about that job fail. Intake refuses them
(`lone_surrogate_path`); answers replace any that slip through
(`without_lone_surrogates`), so rendering can never fail on them.

Example:
    >>> lone_surrogate_path({"config": {"name": "\\ud800"}})
    'config.name'
    >>> without_lone_surrogates(["ok", "\\ud800"])
    ['ok', '\\\\ud800']
"""

from __future__ import annotations

from typing import Any

__all__ = ["has_lone_surrogate", "lone_surrogate_path", "without_lone_surrogates"]


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate_path(value: Any) -> str | None:
    """Where in ``value`` (nested dicts and lists) a key or string holds a lone
    surrogate, as ``a.b[2]``; None when there is none. Iterative: any depth."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return path or "(top level)"
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and has_lone_surrogate(key):
                    return where.encode("utf-8", "backslashreplace").decode("utf-8")
                stack.append((child, where))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


def _clean(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if has_lone_surrogate(text) else text


def without_lone_surrogates(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings and keys written as ``\\udXXX``."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(k) if isinstance(k, str) else k: without_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_lone_surrogates(v) for v in value]
    return value
