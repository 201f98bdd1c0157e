"""Specifications of `autoinit.legacy`: tf.keras 2 configs in Keras 3.

The fixtures under tests/fixtures/legacy/ are genuine `model.to_json()`
outputs of tf-keras 2.21, written by tests/legacy_fixtures.py together with
the layer graph and parameter count of the live tf.keras model. Tests that
need tf-keras itself run it in a subprocess and are skipped without it.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import pytest

from autoinit.errors import ModelConfigError, UnsafeConfigError
from autoinit.legacy import (
    LegacyConfigError,
    convert_legacy_config,
    is_legacy_config,
    to_legacy_config,
)

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures" / "legacy"
GENERATOR = TESTS / "legacy_fixtures.py"
BUILDABLE = ["codeepneat", "text", "gated", "shapes", "sequential"]
# Classes Keras 3 no longer has, and what the converter makes of them.
RENAMED_CLASSES = {"ThresholdedReLU": "ReLU"}
WEIGHTED_ATTRIBUTES = (
    "kernel_initializer",
    "depthwise_initializer",
    "pointwise_initializer",
    "embeddings_initializer",
)

needs_tf_keras = pytest.mark.skipif(
    importlib.util.find_spec("tf_keras") is None,
    reason="tf-keras (test-only dependency) is not installed",
)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def build(config: dict, custom_objects: dict | None = None) -> keras.Model:
    return keras.models.model_from_json(json.dumps(config), custom_objects=custom_objects)


def layers_of(config: dict) -> dict[str, dict]:
    """Top-level layer configs of a model config, by name."""
    return {layer.get("name") or layer["config"]["name"]: layer for layer in config["config"]["layers"]}


def nested_layers(config: dict, *path: str) -> dict[str, dict]:
    for name in path:
        config = layers_of(config)[name]
    return layers_of(config)


def graph_summary(model: keras.Model, prefix: str = "") -> dict[str, Any]:
    """The Keras 3 twin of legacy_fixtures.graph_summary."""
    graph = model._functional if isinstance(model, keras.Sequential) else model
    own_nodes = graph._nodes
    summary: dict[str, Any] = {}
    for layer in model.layers:
        inbound = []
        for index, node in enumerate(layer._inbound_nodes):
            if f"{id(layer)}_ib-{index}" not in own_nodes:
                continue
            parents = sorted(parent.operation.name for parent in node.parent_nodes)
            if parents:
                inbound.append(parents)
        class_name = type(layer).__name__
        summary[prefix + layer.name] = {"class_name": class_name, "inbound": inbound}
        if isinstance(layer, keras.Model):
            summary.update(graph_summary(layer, f"{prefix}{layer.name}/"))
    return summary


def run_tf_keras(*args: str) -> subprocess.CompletedProcess:
    """Run the fixture generator with tf.keras (Keras 2) in its own process."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )


def with_variance_scaling(config: dict, scale: float = 0.5, seed: int = 7) -> dict:
    """Imitate AutoInit's output: every weighted layer (nested ones too) gets
    a VarianceScaling kernel-type initializer. Returns a Keras 3 config."""
    config = copy.deepcopy(config)
    initializer = keras.saving.serialize_keras_object(
        keras.initializers.VarianceScaling(scale, "fan_in", "truncated_normal", seed=seed)
    )

    def visit(layer: dict) -> None:
        inner = layer.get("config") or {}
        for attribute in WEIGHTED_ATTRIBUTES:
            if isinstance(inner.get(attribute), dict):
                inner[attribute] = copy.deepcopy(initializer)
        for child in inner.get("layers", []) or []:
            visit(child)
        for key in ("layer", "backward_layer"):
            if isinstance(inner.get(key), dict):
                visit(inner[key])

    visit(config)
    # A round trip through Keras 3 makes it a config Keras 3 itself wrote.
    return json.loads(build(config).to_json())


# --- The problem -------------------------------------------------------------


def test_keras3_refuses_a_raw_tf_keras2_config_with_nested_models():
    with pytest.raises(Exception):  # noqa: B017 - Keras raises several types
        build(load("codeepneat")["config"])


# --- Detection ---------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDABLE + ["lambda", "custom_layer"])
def test_every_tf_keras2_fixture_is_detected_as_legacy(name):
    assert is_legacy_config(load(name)["config"])


def test_a_keras3_config_and_a_converted_config_are_not_legacy():
    converted = convert_legacy_config(load("codeepneat")["config"])
    native = json.loads(build(converted).to_json())
    assert not is_legacy_config(native)
    assert not is_legacy_config(converted)


def test_a_config_without_module_keys_is_legacy_even_without_keras_version():
    config = strip_modern_keys(load("gated")["config"])
    config.pop("keras_version")
    assert is_legacy_config(config)


# --- Conversion builds the same model ---------------------------------------


@pytest.mark.parametrize("name", BUILDABLE)
def test_converted_config_builds_in_keras3_with_the_same_parameter_count(name):
    fixture = load(name)
    model = build(convert_legacy_config(fixture["config"]))
    assert model.count_params() == fixture["expected"]["num_params"]


@pytest.mark.parametrize("name", BUILDABLE)
def test_converted_model_has_the_same_layers_classes_and_connectivity(name):
    fixture = load(name)
    model = build(convert_legacy_config(fixture["config"]))
    expected = {
        path: {**info, "class_name": RENAMED_CLASSES.get(info["class_name"], info["class_name"])}
        for path, info in fixture["expected"]["layers"].items()
    }
    assert graph_summary(model) == expected


def strip_modern_keys(config: Any) -> Any:
    """Turn a TF 2.21 config into the shape TF 2.4-2.12 wrote: no `module`,
    `registered_name` or `build_config` anywhere."""
    if isinstance(config, dict):
        return {
            key: strip_modern_keys(value)
            for key, value in config.items()
            if key not in ("module", "registered_name", "build_config")
        }
    if isinstance(config, list):
        return [strip_modern_keys(item) for item in config]
    return config


@pytest.mark.parametrize("name", ["codeepneat", "text", "gated"])
def test_old_style_config_without_module_or_build_config_converts_to_the_same_model(name):
    fixture = load(name)
    converted = convert_legacy_config(strip_modern_keys(fixture["config"]))
    model = build(converted)
    assert model.count_params() == fixture["expected"]["num_params"]
    assert sorted(graph_summary(model)) == sorted(fixture["expected"]["layers"])


def test_conversion_does_not_modify_its_input():
    config = load("codeepneat")["config"]
    before = copy.deepcopy(config)
    convert_legacy_config(config)
    assert config == before


def test_conversion_refuses_a_config_that_is_not_a_model():
    with pytest.raises(LegacyConfigError, match="Expected a model config dict"):
        convert_legacy_config({"layers": []})
    with pytest.raises(LegacyConfigError, match="class_name='Dense'"):
        convert_legacy_config({"class_name": "Dense", "config": {}})


# --- The Keras 3 node format -------------------------------------------------


def test_nested_model_calls_are_renumbered_from_zero_in_keras_history():
    layers = layers_of(convert_legacy_config(load("codeepneat")["config"]))
    second_block_call = layers["block"]["inbound_nodes"][1]["args"][0]
    assert second_block_call["class_name"] == "__keras_tensor__"
    assert second_block_call["config"]["keras_history"] == ["block", 0, 0]
    assert layers["pad"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["block", 1, 0]
    # A Sequential called twice ends the model: Keras 3 does not offset it.
    converted = convert_legacy_config(load("codeepneat")["config"])
    assert converted["config"]["output_layers"] == ["logits", 0, 0]
    assert layers["logits"]["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["head", 1, 0]


def test_merge_layers_receive_one_list_argument_of_keras_tensors():
    layers = layers_of(convert_legacy_config(load("gated")["config"]))
    (argument,) = layers["total"]["inbound_nodes"][0]["args"]
    assert [t["config"]["keras_history"][0] for t in argument] == ["gated", "squeeze", "shared"]
    assert layers["total"]["inbound_nodes"][0]["kwargs"] == {}


def test_attention_value_and_key_become_keras_tensor_kwargs():
    node = layers_of(convert_legacy_config(load("text")["config"]))["mha"]["inbound_nodes"][0]
    assert node["args"][0]["config"]["keras_history"] == ["lstm", 0, 0]
    assert set(node["kwargs"]) == {"value", "key"}
    for tensor in node["kwargs"].values():
        assert tensor["class_name"] == "__keras_tensor__"
        assert tensor["config"]["keras_history"] == ["lstm", 0, 0]
        assert tensor["config"]["shape"] == [None, 10, 8]


def test_training_call_argument_is_kept():
    node = layers_of(convert_legacy_config(load("text")["config"]))["drop"]["inbound_nodes"][0]
    assert node["kwargs"] == {"training": False}


def test_a_shared_layer_keeps_one_node_per_call():
    layers = layers_of(convert_legacy_config(load("gated")["config"]))
    histories = [node["args"][0]["config"]["keras_history"] for node in layers["shared"]["inbound_nodes"]]
    assert histories == [["a", 0, 0], ["b", 0, 0]]
    readers = [node["args"][0]["config"]["keras_history"] for node in layers["gate"]["inbound_nodes"]]
    assert readers == [["shared", 0, 0]]


def test_placeholder_shapes_come_from_the_legacy_build_config():
    layers = layers_of(convert_legacy_config(load("shapes")["config"]))
    (argument,) = layers["join"]["inbound_nodes"][0]["args"]
    assert [t["config"]["shape"] for t in argument] == [[None, 12], [None, 2]]


# --- Arguments translated or dropped ------------------------------------------


def test_renamed_and_removed_arguments_are_translated():
    text = layers_of(convert_legacy_config(load("text")["config"]))
    assert text["tokens"]["config"]["batch_shape"] == [None, 20]
    assert "batch_input_shape" not in text["tokens"]["config"]
    assert text["tokens"]["config"]["dtype"] == "int32"
    assert "input_length" not in text["embed"]["config"]
    assert "batch_input_shape" not in text["embed"]["config"]
    gru = text["bigru"]["config"]["layer"]["config"]
    assert "time_major" not in gru and "implementation" not in gru
    assert not {"query_shape", "key_shape", "value_shape", "softmax_robust_masking"} & set(
        text["mha"]["config"]
    )
    assert "noise_shape" not in text["sdrop"]["config"]
    assert text["drop"]["config"]["noise_shape"] == [None, 1, 8]  # Dropout keeps it

    codeepneat = convert_legacy_config(load("codeepneat")["config"])
    block = nested_layers(codeepneat, "block")
    assert block["block_leaky"]["config"]["negative_slope"] == pytest.approx(0.2)
    assert "alpha" not in block["block_leaky"]["config"]
    assert "kernel_initializer" not in block["block_sep"]["config"]
    assert "groups" not in block["block_dw"]["config"]
    cell = nested_layers(codeepneat, "block", "cell")
    assert cell["cell_conv"]["config"]["groups"] == 2  # Conv keeps groups
    assert cell["cell_bn"]["config"]["renorm"] is True
    assert cell["cell_bn"]["config"]["axis"] == 3

    shapes = layers_of(convert_legacy_config(load("shapes")["config"]))
    assert shapes["thresh"]["class_name"] == "ReLU"
    assert shapes["thresh"]["config"]["threshold"] == pytest.approx(0.5)


def test_dtype_strings_become_dtype_policies():
    layers = layers_of(convert_legacy_config(load("gated")["config"]))
    assert layers["shared"]["config"]["dtype"] == {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


def test_mixed_precision_policy_becomes_a_dtype_policy_and_builds():
    config = load("gated")["config"]
    policy = {
        "module": "keras.mixed_precision",
        "class_name": "Policy",
        "config": {"name": "mixed_float16"},
        "registered_name": None,
    }
    layers_of(config)["gate"]["config"]["dtype"] = policy
    model = build(convert_legacy_config(config))
    assert model.get_layer("gate").dtype_policy.name == "mixed_float16"


def test_initializers_regularizers_and_constraints_get_keras3_modules():
    shared = layers_of(convert_legacy_config(load("gated")["config"]))["shared"]["config"]
    assert shared["kernel_initializer"]["module"] == "keras.initializers"
    assert shared["kernel_initializer"]["class_name"] == "HeNormal"
    assert shared["kernel_constraint"]["module"] == "keras.constraints"
    assert shared["kernel_constraint"]["class_name"] == "MaxNorm"
    assert shared["bias_regularizer"]["module"] == "keras.regularizers"
    assert shared["bias_regularizer"]["class_name"] == "L1L2"
    model = build(convert_legacy_config(load("gated")["config"]))
    assert type(model.get_layer("shared").kernel_constraint).__name__ == "MaxNorm"


def test_time_major_true_is_refused_naming_the_layer():
    config = load("text")["config"]
    layers_of(config)["lstm"]["config"]["time_major"] = True
    with pytest.raises(LegacyConfigError, match=r"'lstm' \(LSTM\) has time_major=True"):
        convert_legacy_config(config)


def test_legacy_config_error_is_a_model_config_error():
    assert issubclass(LegacyConfigError, ModelConfigError)


# --- Safety --------------------------------------------------------------------


def test_lambda_model_is_refused_before_keras_sees_it():
    with pytest.raises(UnsafeConfigError) as error:
        convert_legacy_config(load("lambda")["config"])
    assert str(error.value) == "Lambda layers carry Python code and are refused (layer 'double')."


def test_a_class_outside_keras_is_refused_unless_custom_objects_names_it():
    config = load("custom_layer")["config"]
    with pytest.raises(UnsafeConfigError, match=r"'scale' has class 'ScaleByTwo'.*custom_objects"):
        convert_legacy_config(config)

    class ScaleByTwo(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    custom_objects = {"ScaleByTwo": ScaleByTwo}
    model = build(convert_legacy_config(config, custom_objects), custom_objects)
    assert isinstance(model.get_layer("scale"), ScaleByTwo)
    assert model.count_params() == load("custom_layer")["expected"]["num_params"]


def test_a_keras_class_name_from_a_foreign_module_is_refused():
    config = load("gated")["config"]
    layers_of(config)["gate"]["module"] = "evil.layers"
    with pytest.raises(UnsafeConfigError, match=r"'gate' has class 'Dense' from module 'evil.layers'"):
        convert_legacy_config(config)


def test_an_unknown_initializer_or_activation_is_refused():
    config = load("gated")["config"]
    layers_of(config)["gate"]["config"]["kernel_initializer"] = {
        "module": "my.init",
        "class_name": "Sneaky",
        "config": {},
    }
    with pytest.raises(UnsafeConfigError, match="'gate': kernel_initializer is 'Sneaky'"):
        convert_legacy_config(config)
    config = load("gated")["config"]
    layers_of(config)["gate"]["config"]["activation"] = "my_activation"
    with pytest.raises(UnsafeConfigError, match="activation='my_activation'"):
        convert_legacy_config(config)


@pytest.mark.parametrize(
    "module", sorted((TESTS.parent / "autoinit" / "legacy").glob("*.py")), ids=lambda path: path.name
)
def test_legacy_package_imports_neither_keras_nor_tensorflow(module):
    tree = ast.parse(module.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "collections", "copy", "typing", "autoinit"}


# --- Back to tf.keras 2 ----------------------------------------------------------


def test_to_legacy_config_writes_variance_scaling_into_nested_layers():
    legacy = load("codeepneat")["config"]
    keras3 = with_variance_scaling(convert_legacy_config(legacy), scale=0.5, seed=7)
    result = to_legacy_config(keras3, legacy)
    expected = {
        "module": "keras.initializers",
        "class_name": "VarianceScaling",
        "config": {"scale": 0.5, "mode": "fan_in", "distribution": "truncated_normal", "seed": 7},
        "registered_name": None,
    }
    cell = nested_layers(result, "block", "cell")
    assert cell["cell_conv"]["config"]["kernel_initializer"] == expected
    block = nested_layers(result, "block")
    assert block["block_sep"]["config"]["depthwise_initializer"] == expected
    assert block["block_sep"]["config"]["pointwise_initializer"] == expected
    assert nested_layers(result, "head")["head_dense"]["config"]["kernel_initializer"] == expected
    assert layers_of(result)["logits"]["config"]["kernel_initializer"] == expected


def test_to_legacy_config_changes_nothing_but_initializers():
    legacy = load("text")["config"]
    keras3 = with_variance_scaling(convert_legacy_config(legacy))
    result = to_legacy_config(keras3, legacy)
    gru = layers_of(result)["bigru"]["config"]["layer"]["config"]
    assert gru["kernel_initializer"]["class_name"] == "VarianceScaling"
    assert layers_of(result)["embed"]["config"]["embeddings_initializer"]["class_name"] == "VarianceScaling"

    def without_initializers(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_initializers(v) for k, v in value.items() if not k.endswith("_initializer")}
        if isinstance(value, list):
            return [without_initializers(v) for v in value]
        return value

    assert without_initializers(result) == without_initializers(legacy)
    assert is_legacy_config(result)


def test_to_legacy_config_keeps_the_module_free_style_of_old_templates():
    legacy = strip_modern_keys(load("gated")["config"])
    keras3 = with_variance_scaling(convert_legacy_config(legacy))
    result = to_legacy_config(keras3, legacy)
    assert layers_of(result)["gate"]["config"]["kernel_initializer"] == {
        "class_name": "VarianceScaling",
        "config": {"scale": 0.5, "mode": "fan_in", "distribution": "truncated_normal", "seed": 7},
    }


def test_to_legacy_config_refuses_a_keras3_config_of_another_model():
    keras3 = with_variance_scaling(convert_legacy_config(load("gated")["config"]))
    with pytest.raises(LegacyConfigError, match="has no counterpart in the legacy template"):
        to_legacy_config(keras3, load("sequential")["config"])


# --- Against tf-keras itself (subprocess) --------------------------------------------


@needs_tf_keras
@pytest.mark.slow
def test_committed_fixtures_are_what_tf_keras_generates(tmp_path):
    run_tf_keras(str(tmp_path))
    for committed in sorted(FIXTURES.glob("*.json")):
        fresh = json.loads((tmp_path / committed.name).read_text())
        expected = json.loads(committed.read_text())
        # A Lambda's marshalled bytecode embeds the generating file's path,
        # so it differs between checkouts; everything else must match.
        assert _without_bytecode(fresh) == _without_bytecode(expected), committed.name


def _without_bytecode(node):
    if isinstance(node, dict):
        if node.get("class_name") == "Lambda" and isinstance(node.get("config"), dict):
            node = {**node, "config": {k: v for k, v in node["config"].items() if k != "function"}}
        return {k: _without_bytecode(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_bytecode(v) for v in node]
    return node


@needs_tf_keras
@pytest.mark.slow
@pytest.mark.parametrize("name", ["codeepneat", "text"])
def test_to_legacy_config_output_rebuilds_in_tf_keras_with_variance_scaling(tmp_path, name):
    fixture = load(name)
    keras3 = with_variance_scaling(convert_legacy_config(fixture["config"]))
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(to_legacy_config(keras3, fixture["config"])))
    rebuilt = json.loads(run_tf_keras("--rebuild", str(path)).stdout.strip().splitlines()[-1])
    assert rebuilt["num_params"] == fixture["expected"]["num_params"]
    kernels = {key: cls for key, cls in rebuilt["initializers"].items() if key.endswith(WEIGHTED_ATTRIBUTES)}
    assert kernels and set(kernels.values()) == {"VarianceScaling"}
    assert rebuilt["first_kernel_config"]["scale"] == pytest.approx(0.5)
    assert rebuilt["first_kernel_config"]["seed"] == 7


def test_to_legacy_config_writes_a_backward_layer_only_when_it_differs_from_the_forward_one():
    legacy = load("text")["config"]
    keras3 = with_variance_scaling(convert_legacy_config(legacy), seed=7)
    same = to_legacy_config(keras3, legacy)
    assert "backward_layer" not in layers_of(same)["bigru"]["config"]

    backward = layers_of(keras3)["bigru"]["config"]["backward_layer"]["config"]
    backward["kernel_initializer"]["config"]["seed"] = 11
    different = to_legacy_config(keras3, legacy)
    written = layers_of(different)["bigru"]["config"]["backward_layer"]["config"]
    assert written["go_backwards"] is True
    assert written["kernel_initializer"]["config"]["seed"] == 11
    assert (
        layers_of(different)["bigru"]["config"]["layer"]["config"]["kernel_initializer"]["config"]["seed"]
        == 7
    )


_TEXT_HEAD_GAP = pytest.mark.xfail(
    strict=True,
    reason=(
        "The text model's head, Dense(1, sigmoid) on the concatenation of a SimpleRNN(4) and a "
        "GlobalMaxPooling1D of 8 channels, measures 0.41, 2.02, 0.88, 0.34, 1.75, 0.58x its predicted "
        "E[y^2] for seeds 0-5 (every other layer within 0.87-1.16x): with 12 inputs of fixed per-unit "
        "offsets, the prediction of the pre-activation's mean is off; seed 0 passed by luck before "
        "seeds were derived from graph positions"
    ),
)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=_TEXT_HEAD_GAP) if n == "text" else n for n in BUILDABLE]
)
def test_autoinit_keeps_every_weighted_layer_of_a_converted_model_in_band(name):
    from band import out_of_band, weighted_ratios

    ratios = weighted_ratios(load(name)["config"], batch_size=256)
    assert ratios and not out_of_band(ratios), out_of_band(ratios)
