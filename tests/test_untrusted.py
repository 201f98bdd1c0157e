"""Specifications for `autoinit.upload`: what an upload may contain.

Accepted configs come from real Keras models; refused ones are real configs
edited the way an attacker would edit them.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from autoinit.errors import ModelConfigError, UnsafeConfigError  # noqa: E402
from autoinit.upload import (  # noqa: E402
    REFUSED_CLASSES,
    UploadLimits,
    UploadTooLargeError,
    parse_upload,
    read_keras_archive_config,
    validate_model_config,
)


def config_of(model: keras.Model) -> dict[str, Any]:
    return json.loads(model.to_json())


@pytest.fixture(scope="module")
def dense_model() -> keras.Model:
    inputs = keras.Input((8,), name="x")
    h = L.Dense(
        4,
        activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=1),
        kernel_regularizer=keras.regularizers.L2(0.01),
        kernel_constraint=keras.constraints.MaxNorm(2.0),
        name="hidden",
    )(inputs)
    h = L.BatchNormalization(name="bn")(h)
    outputs = L.Dense(2, activation="softmax", name="out")(h)
    return keras.Model(inputs, outputs, name="dense_model")


@pytest.fixture
def dense_config(dense_model: keras.Model) -> dict[str, Any]:
    return config_of(dense_model)  # fresh per test: tests edit it


def refusal(config: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(UnsafeConfigError) as info:
        validate_model_config(config, **kwargs)
    return str(info.value)


# --- Real configs pass ------------------------------------------------------------


def test_real_functional_config_is_accepted_and_its_layers_counted(
    dense_model: keras.Model, dense_config: dict[str, Any]
) -> None:
    summary = validate_model_config(dense_config)
    assert summary.num_layers == 1 + len(dense_model.layers)  # + the model
    assert summary.class_counts == {"Functional": 1, "InputLayer": 1, "Dense": 2, "BatchNormalization": 1}
    assert 0 < summary.max_depth <= UploadLimits().max_depth
    assert summary.estimated_params == dense_model.count_params()  # Dense, BN, Dense


def test_real_sequential_config_is_accepted() -> None:
    model = keras.Sequential(
        [
            keras.Input((6,)),
            L.Dense(3, activation="tanh"),
            L.Dropout(0.1),
            L.Dense(1, activation=keras.activations.sigmoid),
        ]
    )
    summary = validate_model_config(config_of(model))
    assert summary.class_counts["Sequential"] == 1
    assert summary.class_counts["Dense"] == 2


def test_nested_models_are_walked_and_their_layers_counted() -> None:
    inner_seq = keras.Sequential([L.Dense(4, name="seq_dense")], name="inner_seq")
    cell_in = keras.Input((4,))
    inner_fn = keras.Model(cell_in, L.Dense(4, name="fn_dense")(cell_in), name="inner_fn")
    inputs = keras.Input((4,))
    outputs = inner_fn(inner_seq(inputs))
    model = keras.Model(inputs, outputs, name="outer")
    summary = validate_model_config(config_of(model))
    assert summary.class_counts["Functional"] == 2
    assert summary.class_counts["Sequential"] == 1
    assert summary.class_counts["Dense"] == 2  # both inner Dense layers seen


def test_attention_and_recurrent_configs_are_accepted() -> None:
    inputs = keras.Input((5, 3))
    a = L.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    b = L.Bidirectional(L.LSTM(4, return_sequences=True))(inputs)
    c = L.GRU(4, return_sequences=True)(inputs)
    d = L.TimeDistributed(L.Dense(2))(inputs)
    e = L.RNN(L.GRUCell(3), return_sequences=True)(inputs)
    outputs = L.Concatenate()([a, b, c, d, e])
    summary = validate_model_config(config_of(keras.Model(inputs, outputs)))
    counts = summary.class_counts
    assert counts["MultiHeadAttention"] == 1
    assert counts["LSTM"] == 2  # Bidirectional stores forward and backward
    assert counts["GRU"] == 1 and counts["GRUCell"] == 1
    assert counts["Bidirectional"] == counts["TimeDistributed"] == 1


def test_layers_the_library_models_are_accepted_on_upload() -> None:
    """Masking, RMSNormalization and ActivityRegularization have rules, so an
    upload holding them is accepted (they used to be refused)."""
    inputs = keras.Input((5, 6))
    h = L.RMSNormalization(name="rms")(inputs)
    h = L.ActivityRegularization(l1=0.01, name="act_reg")(h)
    h = L.Masking(mask_value=0.0, name="mask")(h)
    outputs = L.Dense(2, name="out")(h)
    summary = validate_model_config(config_of(keras.Model(inputs, outputs)))
    for name in ("Masking", "RMSNormalization", "ActivityRegularization"):
        assert summary.class_counts[name] == 1


def test_a_class_the_library_does_not_model_is_refused_with_the_reason() -> None:
    inputs = keras.Input((5, 4))
    outputs = L.Attention(name="att")([inputs, inputs])
    message = refusal(config_of(keras.Model(inputs, outputs)))
    assert "'Attention'" in message and "no estimator for Attention" in message
    assert "in layer 'att' (Attention)" in message


def _op_node_model_config(op: Any = None) -> dict[str, Any]:
    inputs = keras.Input((4,), name="x")
    h = L.Dense(4, name="d")(inputs)
    return config_of(keras.Model(inputs, op(h) if op else inputs + h))  # x + h: an ops.numpy Add node


def test_functional_op_nodes_the_adapter_models_are_accepted_and_counted() -> None:
    config = _op_node_model_config()
    assert config["config"]["layers"][2]["module"] == "keras.src.ops.numpy"
    assert validate_model_config(config).class_counts["Add"] == 1


def test_functional_op_nodes_are_refused_unless_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from autoinit import keras_facts

    config = _op_node_model_config(keras.ops.cumsum)
    message = refusal(config)
    assert "'Cumsum' from module 'keras.src.ops.numpy'" in message
    assert "config.layers[2]" in message
    registered = keras_facts.OP_NODES.get("keras.src.ops.numpy", frozenset()) | {"Cumsum"}
    monkeypatch.setitem(keras_facts.OP_NODES, "keras.src.ops.numpy", registered)
    assert validate_model_config(config).class_counts["Cumsum"] == 1


def test_every_supported_layer_family_passes_the_allow_list() -> None:
    x1, x3 = keras.Input((16,)), keras.Input((10, 4))
    x4, x5 = keras.Input((8, 8, 3)), keras.Input((4, 4, 4, 2))
    ints = keras.Input((5,), dtype="int32")
    outs = [L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c")(x1), L.Embedding(10, 3)(ints)]
    outs += [
        layer(x1)
        for layer in (
            L.Activation("gelu"),
            L.ReLU(),
            L.LeakyReLU(),
            L.PReLU(),
            L.ELU(),
            L.Softmax(),
            L.GaussianDropout(0.1),
            L.GaussianNoise(0.1),
            L.AlphaDropout(0.1),
            L.LayerNormalization(),
            L.UnitNormalization(),
            L.GroupNormalization(groups=4),
            L.Identity(),
            L.Rescaling(0.5),
            L.RepeatVector(2),
            L.Reshape((4, 4)),
        )
    ]
    outs += [
        merge([x1, x1])
        for merge in (L.Add(), L.Subtract(), L.Multiply(), L.Average(), L.Maximum(), L.Minimum())
    ]
    outs += [
        layer(x3)
        for layer in (
            L.Conv1D(2, 3),
            L.Conv1DTranspose(2, 3),
            L.DepthwiseConv1D(3),
            L.SeparableConv1D(2, 3),
            L.SpatialDropout1D(0.1),
            L.MaxPooling1D(),
            L.AveragePooling1D(2),
            L.GlobalMaxPooling1D(),
            L.GlobalAveragePooling1D(),
            L.UpSampling1D(),
            L.Cropping1D(),
            L.ZeroPadding1D(),
            L.Flatten(),
            L.Permute((2, 1)),
            L.SimpleRNN(2),
        )
    ]
    outs += [
        layer(x4)
        for layer in (
            L.Conv2D(
                2,
                3,
                kernel_regularizer=keras.regularizers.L1L2(0.1, 0.1),
                bias_constraint=keras.constraints.NonNeg(),
            ),
            L.Conv2DTranspose(2, 3),
            L.DepthwiseConv2D(3),
            L.SeparableConv2D(2, 3),
            L.SpatialDropout2D(0.1),
            L.MaxPooling2D(),
            L.AveragePooling2D(2),
            L.GlobalMaxPooling2D(),
            L.GlobalAveragePooling2D(),
            L.UpSampling2D(),
            L.Cropping2D(),
            L.ZeroPadding2D(),
        )
    ]
    outs += [
        layer(x5)
        for layer in (
            L.Conv3D(2, 3),
            L.Conv3DTranspose(2, 3),
            L.SpatialDropout3D(0.1),
            L.MaxPooling3D(),
            L.AveragePooling3D(2),
            L.GlobalMaxPooling3D(),
            L.GlobalAveragePooling3D(),
            L.UpSampling3D(),
            L.ZeroPadding3D(),
            L.Cropping3D(((1, 1), (1, 1), (0, 0))),
        )
    ]
    model = keras.Model([x1, x3, x4, x5, ints], outs)
    summary = validate_model_config(config_of(model))
    built = {type(layer).__name__ for layer in model.layers}
    assert built - {"Functional"} <= set(summary.class_counts)
    assert summary.num_layers == len(model.layers) + 1


def test_keras_activation_given_as_function_object_is_accepted(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["activation"] = {
        "module": "keras.activations",
        "class_name": "function",
        "config": "relu",
        "registered_name": "relu",
    }
    assert validate_model_config(dense_config).num_layers == 5


# --- Code-carrying and file-reading configs are refused ----------------------------


def test_lambda_wrapping_a_public_keras_function_is_refused_plainly() -> None:
    inputs = keras.Input((4,))
    outputs = L.Lambda(keras.activations.relu, name="relu_lambda")(inputs)
    message = refusal(config_of(keras.Model(inputs, outputs)))
    assert message == (
        "Lambda layers carry Python code and are refused (layer 'relu_lambda' at config.layers[1])."
    )


def test_lambda_with_python_code_is_refused_plainly() -> None:
    inputs = keras.Input((4,))
    h = L.Dense(4, name="d")(inputs)
    outputs = L.Lambda(lambda t: t * 2.0, name="double")(h)
    message = refusal(config_of(keras.Model(inputs, outputs)))
    assert message == (
        "Lambda layers carry Python code and are refused (layer 'double' at config.layers[2])."
    )


@pytest.mark.parametrize("class_name", sorted(REFUSED_CLASSES))
def test_each_refused_class_is_named_with_its_reason_and_path(
    dense_config: dict[str, Any], class_name: str
) -> None:
    dense_config["config"]["layers"][2]["class_name"] = class_name
    message = refusal(dense_config)
    assert message.startswith(REFUSED_CLASSES[class_name])
    assert "layer 'bn' at config.layers[2]" in message


def test_refused_class_is_found_inside_a_nested_model() -> None:
    inner_in = keras.Input((3,))
    inner = keras.Model(inner_in, L.Dense(3, name="inner_d")(inner_in), name="inner")
    inputs = keras.Input((3,))
    config = config_of(keras.Model(inputs, inner(inputs)))
    config["config"]["layers"][1]["config"]["layers"][1]["class_name"] = "TFSMLayer"
    message = refusal(config)
    assert "TFSMLayer" in message
    assert "config.layers[1].config.layers[1]" in message


def test_class_from_a_module_outside_keras_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1].update(module="os", class_name="system")
    message = refusal(dense_config)
    assert "'os'" in message and "'system'" in message
    assert "not part of Keras" in message
    assert "config.layers[1]" in message


def test_keras_module_not_on_the_allow_list_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["module"] = "keras.src.saving.saving_lib"
    message = refusal(dense_config)
    assert "'keras.src.saving.saving_lib'" in message


def test_allowed_class_name_under_the_wrong_module_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["module"] = "keras.initializers"
    message = refusal(dense_config)
    assert "Class 'Dense' from module 'keras.initializers'" in message


def test_registered_name_differing_from_class_name_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["registered_name"] = "evil>Dense"
    message = refusal(dense_config)
    assert "registered_name 'evil>Dense'" in message
    assert "at config.layers[1], in layer 'hidden' (Dense)" in message


def test_custom_class_with_null_module_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["module"] = None
    assert "custom class" in refusal(dense_config)


def test_lambda_marker_deep_inside_an_initializer_is_refused_with_its_path(
    dense_config: dict[str, Any],
) -> None:
    initializer = dense_config["config"]["layers"][1]["config"]["kernel_initializer"]
    initializer["config"]["seed"] = {
        "class_name": "__lambda__",
        "config": {"code": "4wEAAAA=", "defaults": None, "closure": None},
    }
    message = refusal(dense_config)
    assert "a serialized Python lambda" in message
    assert ("at config.layers[1].config.kernel_initializer.config.seed, in layer 'hidden' (Dense)") in message


@pytest.mark.parametrize("marker", ["__numpy__", "__tensor__", "__typespec__", "__bytes__"])
def test_serialization_markers_are_refused(dense_config: dict[str, Any], marker: str) -> None:
    dense_config["config"]["layers"][1]["config"]["units"] = {
        "class_name": marker,
        "config": {"value": [1], "dtype": "int32"},
    }
    message = refusal(dense_config)
    assert repr(marker) in message
    assert "config.layers[1].config.units" in message


def test_keras_tensor_marker_outside_inbound_nodes_is_refused(
    dense_config: dict[str, Any],
) -> None:
    tensor = dense_config["config"]["layers"][1]["inbound_nodes"][0]["args"][0]
    assert tensor["class_name"] == "__keras_tensor__"  # legal where it is
    dense_config["config"]["layers"][1]["config"]["units"] = tensor
    assert "config.layers[1].config.units" in refusal(dense_config)


def test_activation_given_as_a_builtins_function_object_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["activation"] = {
        "module": "builtins",
        "class_name": "function",
        "config": "relu",
        "registered_name": "function",
    }
    message = refusal(dense_config)
    assert "module 'builtins'" in message
    assert "at config.layers[1].config.activation" in message


def test_unknown_activation_name_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["activation"] = "os.system"
    assert "'os.system' is not a Keras activation" in refusal(dense_config)


def test_function_object_outside_an_activation_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "module": "keras.activations",
        "class_name": "function",
        "config": "relu",
        "registered_name": "relu",
    }
    message = refusal(dense_config)
    assert "only as Keras activations" in message
    assert "config.layers[1].config.kernel_initializer" in message


def test_string_lookup_with_a_vocabulary_file_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][2] = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"name": "lookup", "vocabulary": "/etc/passwd"},
        "registered_name": None,
        "name": "lookup",
        "inbound_nodes": [],
    }
    message = refusal(dense_config)
    assert "read files" in message
    assert "layer 'lookup' at config.layers[2]" in message


def test_file_path_argument_is_refused_on_any_layer(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["vocabulary"] = "/etc/passwd"
    message = refusal(dense_config)
    assert "'/etc/passwd'" in message
    assert "at config.layers[1].config.vocabulary" in message


def test_registered_name_given_as_an_initializer_string_is_refused(
    dense_config: dict[str, Any],
) -> None:
    layer_config = dense_config["config"]["layers"][1]["config"]
    layer_config["bias_initializer"] = "zeros"  # a built-in name is fine
    assert validate_model_config(dense_config).num_layers == 5
    layer_config["kernel_constraint"] = "autoinit>ScaleConstraint"
    message = refusal(dense_config)
    assert "Expected a Keras name" in message
    assert "config.layers[1].config.kernel_constraint" in message


def test_string_starting_with_double_underscore_is_refused(
    dense_config: dict[str, Any],
) -> None:
    dense_config["config"]["layers"][1]["config"]["dtype"] = "__lambda__"
    assert "config.layers[1].config.dtype" in refusal(dense_config)


def test_compile_config_is_refused_by_the_validator() -> None:
    model = keras.Sequential([keras.Input((3,)), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    message = refusal(config_of(model))
    assert "compile_config" in message


def test_extra_allowed_admits_only_the_named_registered_class(
    dense_config: dict[str, Any],
) -> None:
    constraint = {
        "module": "autoinit.constraints",
        "class_name": "ScaleConstraint",
        "config": {"scale": 0.5},
        "registered_name": "autoinit>ScaleConstraint",
    }
    dense_config["config"]["layers"][1]["config"]["kernel_constraint"] = constraint
    extra = {"autoinit.constraints": {"ScaleConstraint"}}
    assert "not part of Keras" in refusal(dense_config)
    assert validate_model_config(dense_config, extra_allowed=extra).num_layers == 5
    constraint["registered_name"] = "other>ScaleConstraint"
    assert "registered_name" in refusal(dense_config, extra_allowed=extra)


def test_top_level_that_is_not_a_model_is_rejected() -> None:
    with pytest.raises(ModelConfigError, match="class_name is one of"):
        validate_model_config({"class_name": "Dense", "config": {}})


# --- tf.keras 2 (legacy) configs ------------------------------------------------------

_LEGACY_SCRIPT = """
import json, tf_keras as k
i = k.Input((8,), name="x")
h = k.layers.Dense(4, activation="relu", name="hidden")(i)
inner = k.Model(i, h, name="inner")
j = k.Input((8,), name="y")
print(json.dumps(json.loads(k.Model(j, inner(j), name="outer").to_json())))
"""


@pytest.fixture(scope="module")
def legacy_config() -> dict[str, Any]:
    pytest.importorskip("tf_keras")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", _LEGACY_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _strip_modules(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_modules(v) for k, v in value.items() if k not in ("module", "registered_name")}
    if isinstance(value, list):
        return [_strip_modules(v) for v in value]
    return value


def test_real_tf_keras_2_config_is_accepted(legacy_config: dict[str, Any]) -> None:
    assert legacy_config["keras_version"].startswith("2.")
    summary = validate_model_config(legacy_config)
    assert summary.class_counts["Functional"] == 2
    assert summary.class_counts["Dense"] == 1


_RESCALING_SCRIPT = """
import json, tf_keras as k
L = k.layers
model = k.Sequential([k.Input((16, 16, 3)), L.Rescaling(1 / 255, name="scale"),
    L.Resizing(12, 12), L.CenterCrop(10, 10), L.RandomFlip(), L.RandomRotation(0.1),
    L.RandomZoom(0.1), L.RandomTranslation(0.1, 0.1), L.RandomContrast(0.1),
    L.RandomBrightness(0.1), L.RandomCrop(8, 8), L.Normalization(mean=0.5, variance=0.25),
    L.Conv2D(4, 3, name="conv"), L.Flatten(), L.Dense(2, name="out")], name="pipeline")
print(json.dumps({"params": model.count_params(), "config": json.loads(model.to_json())}))
"""


def test_real_tf_keras_2_config_with_rescaling_is_accepted() -> None:
    """Every image pipeline starts with Rescaling(1/255), most augment: the
    tf.keras 2 config goes through parse -> convert -> validate -> Keras 3
    (the augmentation layers' rng_type is dropped)."""
    pytest.importorskip("tf_keras")
    from autoinit.legacy import convert_legacy_config, is_legacy_config

    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", _RESCALING_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    made = json.loads(out.stdout.strip().splitlines()[-1])
    config = parse_upload(json.dumps(made["config"]).encode(), "pipeline.json")
    assert config["keras_version"].startswith("2.") and is_legacy_config(config)
    converted = convert_legacy_config(config)
    summary = validate_model_config(converted)
    assert summary.class_counts["Rescaling"] == summary.class_counts["RandomFlip"] == 1
    model = keras.models.model_from_json(json.dumps(converted))
    assert model.get_layer("scale").scale == pytest.approx(1 / 255)
    assert model.count_params() == made["params"] <= summary.estimated_params


def test_legacy_entries_without_module_are_judged_by_class_name(
    legacy_config: dict[str, Any],
) -> None:
    old_style = _strip_modules(legacy_config)  # as tf.keras < 2.13 wrote them
    assert validate_model_config(old_style).class_counts["Dense"] == 1
    inner_layers = old_style["config"]["layers"][1]["config"]["layers"]
    inner_layers[1]["class_name"] = "ScaleByTwo"
    assert "'ScaleByTwo' is not on the allow-list" in refusal(old_style)


# --- Limits ----------------------------------------------------------------------------


def test_too_many_layers_is_refused(dense_config: dict[str, Any]) -> None:
    with pytest.raises(ModelConfigError, match="more than 3 layers"):
        validate_model_config(dense_config, UploadLimits(max_layers=3))


def test_too_deep_nesting_is_refused_without_recursion_error(
    dense_config: dict[str, Any],
) -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    dense_config["config"]["layers"][1]["build_config"]["input_shape"] = deep
    with pytest.raises(ModelConfigError, match="nested deeper than 64"):
        validate_model_config(dense_config)


def test_huge_embedding_is_refused_by_the_parameter_estimate() -> None:
    inputs = keras.Input((5,), dtype="int32")
    config = config_of(keras.Model(inputs, L.Embedding(10, 3, name="emb")(inputs)))
    config["config"]["layers"][1]["config"]["input_dim"] = 10**7
    config["config"]["layers"][1]["config"]["output_dim"] = 10**3
    with pytest.raises(ModelConfigError, match="parameters") as info:
        validate_model_config(config)
    assert "layer 'emb' (Embedding) at config.layers[1]" in str(info.value)


# --- .keras archives and uploads ------------------------------------------------------


@pytest.fixture(scope="module")
def saved_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d")], name="saved")
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    model.save(path)
    return path.read_bytes()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_real_keras_archive_is_read_opening_only_config_json(
    saved_archive: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def recording_open(self: zipfile.ZipFile, name: Any, *args: Any, **kw: Any):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kw)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    config = read_keras_archive_config(saved_archive)
    assert opened == ["config.json"]
    assert config["class_name"] == "Sequential"
    assert config["config"]["name"] == "saved"
    assert validate_model_config(config).class_counts["Dense"] == 1


def test_parse_upload_reads_a_keras_archive_and_drops_compile_config(
    tmp_path: Path,
) -> None:
    model = keras.Sequential([keras.Input((3,)), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "compiled.keras")
    config = parse_upload((tmp_path / "compiled.keras").read_bytes(), None)
    assert "compile_config" not in config
    assert validate_model_config(config).num_layers == 3


def test_parse_upload_reads_json_bytes(dense_config: dict[str, Any]) -> None:
    data = json.dumps(dense_config).encode()
    parsed = parse_upload(data, "model.json")
    assert "compile_config" not in parsed
    dense_config.pop("compile_config")
    assert parsed == dense_config


def test_zip_bomb_config_is_refused() -> None:
    bomb = b'{"class_name": "Sequential", "pad": "' + b" " * 5_000_000 + b'"}'
    data = zip_bytes({"config.json": bomb}, zipfile.ZIP_DEFLATED)
    with pytest.raises(UnsafeConfigError, match="zip bomb"):
        read_keras_archive_config(data)


def test_oversized_config_member_is_refused_as_too_large() -> None:
    data = zip_bytes({"config.json": b'{"a": "' + b"x" * 2000 + b'"}'})
    with pytest.raises(UploadTooLargeError, match="config.json"):
        read_keras_archive_config(data, UploadLimits(max_archive_member_bytes=1000))


def test_member_escaping_the_archive_is_refused(saved_archive: bytes) -> None:
    data = zip_bytes({"config.json": b"{}", "../evil": b"x"})
    with pytest.raises(UnsafeConfigError, match=r"'\.\./evil'"):
        read_keras_archive_config(data)


def test_archive_without_config_json_is_refused_listing_its_files() -> None:
    data = zip_bytes({"metadata.json": b"{}", "model.weights.h5": b"w"})
    with pytest.raises(ModelConfigError, match="found no") as info:
        read_keras_archive_config(data)
    assert "metadata.json" in str(info.value)


def test_truncated_archive_is_refused(saved_archive: bytes) -> None:
    with pytest.raises(ModelConfigError, match="truncated"):
        parse_upload(saved_archive[: len(saved_archive) // 2], "model.keras")


def test_zipped_saved_model_is_refused() -> None:
    data = zip_bytes({"saved_model.pb": b"\x08\x01", "variables/x": b""})
    with pytest.raises(ModelConfigError, match="SavedModel"):
        parse_upload(data, "model.zip")


def test_saved_model_protobuf_is_refused_by_name() -> None:
    with pytest.raises(ModelConfigError, match="SavedModel"):
        parse_upload(b"\x08\x01\x12\x00", "saved_model.pb")


def test_real_hdf5_model_file_is_refused_with_what_to_upload(tmp_path: Path) -> None:
    model = keras.Sequential([keras.Input((2,)), L.Dense(1)])
    model.save(tmp_path / "m.h5")  # Keras 3 still writes legacy HDF5
    data = (tmp_path / "m.h5").read_bytes()
    for filename in ("m.h5", None, "model.json"):
        with pytest.raises(ModelConfigError, match=r"HDF5.*\.keras archive"):
            parse_upload(data, filename)


def test_random_bytes_are_refused_with_a_clear_error() -> None:
    data = random.Random(0).randbytes(2000)
    with pytest.raises(ModelConfigError, match="JSON config") as info:
        parse_upload(data, None)
    assert not isinstance(info.value, UploadTooLargeError)


def test_invalid_json_error_gives_line_and_column() -> None:
    with pytest.raises(ModelConfigError, match="line 2, column 12"):
        parse_upload(b'{"class_name": "Sequential",\n "config": }', "m.json")


def test_deeply_nested_json_upload_is_refused_cleanly() -> None:
    with pytest.raises(ModelConfigError, match="nested too deeply: 200000 levels"):
        parse_upload(b"[" * 200_000 + b"]" * 200_000, None)


def test_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="Received a JSON list"):
        parse_upload(b"[1, 2]", None)


def test_duplicate_json_keys_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="twice"):
        parse_upload(b'{"class_name": "Sequential", "class_name": "Lambda"}', None)


def test_keras_named_file_that_is_not_a_zip_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="not a zip"):
        parse_upload(b'{"class_name": "Sequential"}', "model.keras")


def test_upload_over_the_size_limit_raises_upload_too_large() -> None:
    limits = UploadLimits(max_bytes=100)
    with pytest.raises(UploadTooLargeError, match="101 bytes; the limit is 100"):
        parse_upload(b" " * 101, "m.json", limits)
    assert issubclass(UploadTooLargeError, ModelConfigError)


def test_empty_upload_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="empty"):
        parse_upload(b"", None)


def test_module_does_not_import_keras() -> None:
    code = (
        "import sys, autoinit.upload; "
        "print(any(m.split('.')[0] in ('keras', 'tensorflow') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"


def test_configs_are_not_mutated_by_validation(dense_config: dict[str, Any]) -> None:
    before = copy.deepcopy(dense_config)
    validate_model_config(dense_config)
    assert dense_config == before
