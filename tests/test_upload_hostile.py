"""Specifications for hostile uploads (issue 13, library side): every input is
refused with a `ModelConfigError` that says where, before any large work, and
never crashes the converter or recurses on untrusted data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autoinit.errors import ModelConfigError
from autoinit.legacy import LegacyConfigError, convert_legacy_config, is_legacy_config
from autoinit.upload import (
    JsonLimitError,
    UploadLimits,
    is_hdf5,
    loads_json,
    parse_upload,
    validate_model_config,
)

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def intake(data: bytes, limits: UploadLimits = UploadLimits()) -> dict[str, Any]:
    """What the API does with an upload: parse, convert tf.keras 2, validate."""
    config = parse_upload(data, "model.json", limits)
    if is_legacy_config(config):
        config = convert_legacy_config(config)
    validate_model_config(config, limits)
    return config


def _sequential(layers: Any, **top: Any) -> str:
    return json.dumps({"class_name": "Sequential", **top, "config": {"layers": layers}})


# --- Malformed configs: refused with the JSON path, never a crash ----------------

MALFORMED = {
    "module is a number": (
        '{"class_name":"Sequential","module":5,"config":{"layers":[]}}',
        "module",
        "top level",
    ),
    "layers is a number": (
        '{"module":"keras","class_name":"Sequential","config":{"layers":5}}',
        "layers to be a list",
        "config.layers",
    ),
    "a layer is a string": (
        '{"class_name":"Sequential","keras_version":"2.15","config":{"layers":["x"]}}',
        "layer config",
        "config.layers[0]",
    ),
    "config is null": ('{"class_name":"Model","config":null}', "JSON object", "at config"),
    "a Functional layer without a name": (
        '{"class_name":"Functional","keras_version":"2.15",'
        '"config":{"layers":[{"class_name":"Dense","config":{}}]}}',
        "'name'",
        "config.layers[0]",
    ),
    "class_name is a list": (
        _sequential([{"class_name": [1], "config": {}}], keras_version="2.15"),
        "class_name to be a string",
        "config.layers[0].class_name",
    ),
    "top class_name is a list": ('{"class_name":[1],"config":{}}', "class_name", "[1]"),
    "inbound_nodes is a number": (
        '{"class_name":"Functional","config":{"layers":[{"class_name":"Dense",'
        '"name":"d","config":{},"inbound_nodes":5}]}}',
        "inbound_nodes",
        "config.layers[0].inbound_nodes",
    ),
    "output_layers is a string": (
        '{"class_name":"Functional","keras_version":"2.15","config":{"layers":[],'
        '"input_layers":[],"output_layers":"x"}}',
        "output_layers",
        "config.output_layers",
    ),
    "build_config is a list": (
        _sequential(
            [{"class_name": "Dense", "config": {"units": 2}, "build_config": [1]}], keras_version="2.15"
        ),
        "build_config",
        "config.layers[0].build_config",
    ),
    "an initializer's class_name is a list": (
        _sequential(
            [{"class_name": "Dense", "config": {"units": 2, "kernel_initializer": {"class_name": [1]}}}],
            keras_version="2.15",
        ),
        "kernel_initializer",
        "class_name",
    ),
    "an activation is a list": (
        _sequential(
            [{"class_name": "Dense", "config": {"units": 2, "activation": [1]}}], keras_version="2.15"
        ),
        "activation",
        "[1]",
    ),
    "a wrapped layer is a number": (
        _sequential([{"class_name": "Bidirectional", "config": {"layer": 3}}], keras_version="2.15"),
        "layer to be a layer config",
        "config.layers[0].config.layer",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_configs_are_refused_naming_the_place(name: str) -> None:
    text, what, where = MALFORMED[name]
    with pytest.raises(ModelConfigError) as info:
        intake(text.encode())
    assert what in str(info.value) and where in str(info.value)


def test_the_converter_refuses_malformed_structure_as_a_legacy_config_error() -> None:
    with pytest.raises(LegacyConfigError, match=r"config\.layers\[0\]"):
        convert_legacy_config({"class_name": "Sequential", "config": {"layers": ["x"]}})


def test_detection_skips_values_of_the_wrong_type() -> None:
    assert not is_legacy_config(
        {"class_name": "Sequential", "module": 5, "config": {"layers": 5}, "keras_version": [3]}
    )
    assert is_legacy_config({"class_name": "Sequential", "config": {"layers": [7, "x"]}})


# --- Deep nesting: bounded while parsing, never a RecursionError ------------------


def test_a_500_deep_list_is_refused_while_parsing() -> None:
    text = _sequential([]).replace("[]", "[" * 500 + "]" * 500)
    with pytest.raises(JsonLimitError, match="nested too deeply: 502 levels; the limit is 64"):
        parse_upload(text.encode(), "model.json")


def test_200_nested_sequentials_are_refused_while_parsing() -> None:
    nested: dict[str, Any] = {"class_name": "Sequential", "config": {"layers": []}}
    for _ in range(199):
        nested = {"class_name": "Sequential", "config": {"layers": [nested]}}
    text = json.dumps(nested)  # json.dumps recurses, but 600 levels are fine
    with pytest.raises(JsonLimitError, match="nested too deeply"):
        parse_upload(text.encode(), "model.json")


def _deep_sequentials(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {"class_name": "Sequential", "config": {"layers": []}}
    for _ in range(levels):
        nested = {"class_name": "Sequential", "config": {"layers": [nested]}}
    return nested


def test_library_calls_on_deep_dicts_are_refused_without_recursion() -> None:
    deep = _deep_sequentials(5000)  # 15,000 levels, built without parsing
    assert is_legacy_config(deep)  # walked iteratively
    with pytest.raises(LegacyConfigError, match="nested deeper than 128 levels"):
        convert_legacy_config(deep)
    with pytest.raises(ModelConfigError, match="nested deeper than 64 levels"):
        validate_model_config(deep)


def test_json_with_more_nodes_than_the_limit_is_refused_before_parsing() -> None:
    text = _sequential([{"class_name": "ReLU", "config": {}}] * 200)
    with pytest.raises(JsonLimitError, match="403 JSON objects and arrays; the limit is 300"):
        parse_upload(text.encode(), "model.json", UploadLimits(max_json_nodes=300))


def test_layers_are_counted_as_they_are_parsed() -> None:
    """6,000 layers are refused by the parser at layer 5,001, before the
    validator (or anything else) sees the config."""
    text = _sequential([{"module": "keras.layers", "class_name": "ReLU", "config": {}}] * 6000)
    with pytest.raises(JsonLimitError, match="more than 5000 layers"):
        parse_upload(text.encode(), "model.json")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = _sequential([], name="[" * 1000 + "{" * 1000)
    config = parse_upload(text.encode(), "model.json", UploadLimits(max_json_nodes=10))
    assert config["name"].startswith("[[[")


# --- Invalid Unicode, numbers and duplicate keys ----------------------------------


def test_an_unpaired_surrogate_escape_is_refused() -> None:
    text = '{"module":"keras","class_name":"Sequential","config":{"name":"\\ud800","layers":[]}}'
    with pytest.raises(ModelConfigError, match="unpaired surrogate"):
        parse_upload(text.encode(), "model.json")


def test_an_unpaired_surrogate_in_a_key_or_a_list_is_refused() -> None:
    for text in ('{"\\udc00": 1}', '{"a": ["ok", "\\udbff"]}'):
        with pytest.raises(ModelConfigError, match="unpaired surrogate"):
            loads_json(text.encode(), max_depth=8, max_nodes=8)


def test_paired_surrogate_escapes_are_accepted() -> None:
    assert loads_json(b'{"name": "\\ud83d\\ude00"}', max_depth=4, max_nodes=4) == {"name": "\U0001f600"}


def test_text_holding_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="unpaired surrogate"):
        loads_json('{"seed": "\ud800"}', max_depth=4, max_nodes=4)


def test_encoded_surrogates_are_not_utf8() -> None:
    with pytest.raises(ModelConfigError, match="not UTF-8"):
        loads_json(b'{"a": "\xed\xa0\x80"}', max_depth=4, max_nodes=4)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused(constant: str) -> None:
    with pytest.raises(ModelConfigError, match="not a JSON number"):
        loads_json(f'{{"seed": {constant}}}', max_depth=4, max_nodes=4)


def test_an_integer_of_5000_digits_is_refused_cleanly() -> None:
    with pytest.raises(ModelConfigError, match="cannot be parsed"):
        loads_json('{"seed": ' + "9" * 5000 + "}", max_depth=4, max_nodes=4)


def test_loads_json_refuses_duplicate_keys_and_depth_for_options() -> None:
    with pytest.raises(ModelConfigError, match="'seed' twice"):
        loads_json(b'{"seed": 1, "seed": 2}', max_depth=4, max_nodes=16, source="The options")
    with pytest.raises(JsonLimitError, match="The options is JSON nested too deeply"):
        loads_json("[" * 2000 + "]" * 2000, max_depth=4, max_nodes=10_000, source="The options")
    assert loads_json(b'{"seed": 1, "baselines": ["default"]}', max_depth=4, max_nodes=16) == {
        "seed": 1,
        "baselines": ["default"],
    }


# --- HDF5 user blocks ---------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 512, 1024, 2048])
def test_hdf5_signature_is_found_at_each_user_block_offset(offset: int) -> None:
    data = b"{" + b" " * (offset - 1) + HDF5_MAGIC if offset else HDF5_MAGIC
    assert is_hdf5(data + b"\0" * 64)
    with pytest.raises(ModelConfigError, match="HDF5"):
        parse_upload(data + b"\0" * 64, "weights.json")


@pytest.mark.parametrize("offset", [1, 100, 511, 768])
def test_hdf5_signature_elsewhere_is_not_hdf5(offset: int) -> None:
    assert not is_hdf5(b" " * offset + HDF5_MAGIC + b"\0" * 64)
