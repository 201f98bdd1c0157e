"""Property: whatever an upload holds, intake answers with a config or a
`ModelConfigError` (which the API maps to a 4xx), never another exception.

Seeds are the zoo's configs (``frontend/examples/``, kept equal to what the
zoo builds by ``tests/test_frontend_examples.py``) and the tf.keras 2
fixtures; hypothesis mutates them (deletes keys, changes types, deepens,
inserts odd Unicode and huge numbers) and feeds the result through
``parse_upload -> (legacy convert) -> validate_model_config``, as bytes and
as Python dicts. Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoinit.errors import ModelConfigError
from autoinit.legacy import convert_legacy_config, is_legacy_config
from autoinit.upload import UploadLimits, parse_upload, validate_model_config

ROOT = Path(__file__).resolve().parents[1]
SEEDS: dict[str, Any] = {
    **{
        f"zoo/{path.stem}": json.loads(path.read_text())
        for path in sorted((ROOT / "frontend" / "examples").glob("*.json"))
        if path.stem != "index" and path.stat().st_size < 100_000
    },
    **{
        f"legacy/{path.stem}": json.loads(path.read_text())["config"]
        for path in sorted((ROOT / "tests" / "fixtures" / "legacy").glob("*.json"))
    },
}
FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = UploadLimits()

ODD_TEXT = st.sampled_from(
    ["\ud800", "\udfff", "a\ud83d", "\x00", "\u202e", "\ufeff", "\U0001f600", "__lambda__", "..", "é" * 3, ""]
)
HUGE = st.sampled_from([10**100, -(10**30), 2**63, -1, 0, 1e308, -1e308, 1e-308, float("inf"), True])
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8), ODD_TEXT, HUGE
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _places(config: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in the config, without recursion."""
    places: list[tuple[Any, Any]] = []
    stack = [config]
    while stack:
        value = stack.pop()
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for key, item in items:
            places.append((value, key))
            stack.append(item)
    return places


def _deepened(value: Any, levels: int, as_dicts: bool) -> Any:
    for _ in range(levels):
        value = {"class_name": "Sequential", "config": {"layers": [value]}} if as_dicts else [value]
    return value


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    config = copy.deepcopy(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        places = _places(config)
        if not places:
            break
        container, key = places[draw(st.integers(0, len(places) - 1))]
        action = draw(st.sampled_from(["delete", "replace", "retype", "deepen", "odd", "huge", "rename"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(VALUE)
        elif action == "retype":
            old = container[key]
            container[key] = [old] if not isinstance(old, list) else {"x": old}
        elif action == "deepen":
            container[key] = _deepened(container[key], draw(st.integers(1, 300)), draw(st.booleans()))
        elif action == "odd":
            container[key] = draw(ODD_TEXT)
        elif action == "huge":
            container[key] = draw(HUGE)
        elif isinstance(container, dict):
            container[
                draw(st.sampled_from(["class_name", "module", "name", "config", "layers", "\ud800"]))
            ] = container.pop(key)
    return config


def _intake(config: Any) -> None:
    if is_legacy_config(config):
        config = convert_legacy_config(config)
    validate_model_config(config, LIMITS)


def _as_bytes(config: Any, ascii_only: bool) -> bytes | None:
    try:
        text = json.dumps(config, ensure_ascii=ascii_only)
    except (ValueError, RecursionError):
        return None  # not JSON-serializable (inf, very deep): nothing to upload
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8


@FUZZ
@given(config=mutated_configs(), ascii_only=st.booleans())
def test_uploaded_bytes_give_a_config_or_a_model_config_error(config: Any, ascii_only: bool) -> None:
    data = _as_bytes(config, ascii_only)
    if data is None:
        return
    try:
        _intake(parse_upload(data, "model.json", LIMITS))
    except ModelConfigError:
        pass


@FUZZ
@given(config=mutated_configs())
def test_library_calls_on_mutated_dicts_give_a_config_or_a_model_config_error(config: Any) -> None:
    try:
        _intake(config)
    except ModelConfigError:
        pass
