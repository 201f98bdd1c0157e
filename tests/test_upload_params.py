"""Specifications for the parameter bound and argument checks of uploads:
the bound is never below what Keras builds, and a config whose shapes cannot
be known is refused with the reason."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402
from keras import layers as L  # noqa: E402

from autoinit import zoo  # noqa: E402
from autoinit.errors import ModelConfigError  # noqa: E402
from autoinit.legacy import convert_legacy_config  # noqa: E402
from autoinit.upload import UploadLimits, validate_model_config  # noqa: E402
from autoinit.upload.params import parameter_bound  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
# ResNet-812 takes long to build; its smaller siblings cover the same blocks.
ZOO_MODELS = sorted(name for name in zoo.ZOO if "812" not in name)
NO_LIMIT = UploadLimits(max_params=10**15)


def config_of(model: keras.Model) -> dict[str, Any]:
    return json.loads(model.to_json())


def without_build_configs(value: Any) -> Any:
    """The config as if every layer had been saved unbuilt."""
    if isinstance(value, dict):
        return {k: without_build_configs(v) for k, v in value.items() if k != "build_config"}
    if isinstance(value, list):
        return [without_build_configs(v) for v in value]
    return value


def dense_after_input(width: int, units: int, build_width: int | None = None) -> dict[str, Any]:
    dense: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "wide", "units": units},
        "registered_name": None,
    }
    if build_width is not None:
        dense["build_config"] = {"input_shape": [None, build_width]}
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, width], "name": "x"},
                    "registered_name": None,
                },
                dense,
            ],
        },
    }


# --- The bound is an upper bound ------------------------------------------------------


@pytest.fixture(scope="module", params=ZOO_MODELS)
def zoo_model(request: pytest.FixtureRequest) -> keras.Model:
    return zoo.build(request.param)


def test_the_bound_is_at_least_what_keras_builds_for_every_zoo_model(zoo_model: keras.Model) -> None:
    summary = validate_model_config(config_of(zoo_model))
    assert summary.estimated_params >= zoo_model.count_params()
    assert summary.estimated_params <= 1.01 * zoo_model.count_params()  # and it is tight


def test_shapes_propagated_from_the_inputs_bound_zoo_models_without_build_configs(
    zoo_model: keras.Model,
) -> None:
    bound = parameter_bound(without_build_configs(config_of(zoo_model)))
    assert bound >= zoo_model.count_params()


@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB0", "DenseNet121"])
def test_the_bound_covers_real_applications_with_and_without_build_configs(name: str) -> None:
    """keras.applications nets (op nodes, Normalization, Rescaling, depthwise
    convs, concatenations), from tests/corpus.py."""
    from corpus import application

    model = application(name)
    for config in (config_of(model), without_build_configs(config_of(model))):
        bound = parameter_bound(config)
        assert model.count_params() <= bound <= 1.01 * model.count_params()


def as_old_tf_keras(value: Any) -> Any:
    """As tf.keras < 2.13 wrote configs: no module, no build_config."""
    if isinstance(value, dict):
        return {
            k: as_old_tf_keras(v)
            for k, v in value.items()
            if k not in ("build_config", "module", "registered_name")
        }
    if isinstance(value, list):
        return [as_old_tf_keras(v) for v in value]
    return value


@pytest.mark.parametrize("old_style", [False, True], ids=["tf_keras_2.15", "tf_keras_2.12"])
@pytest.mark.parametrize("name", ["codeepneat", "text", "gated", "shapes", "sequential"])
def test_the_bound_covers_every_converted_legacy_fixture(name: str, old_style: bool) -> None:
    original = json.loads((FIXTURES / f"{name}.json").read_text())["config"]
    model = keras.models.model_from_json(json.dumps(convert_legacy_config(original)))
    converted = convert_legacy_config(as_old_tf_keras(original) if old_style else original)
    assert validate_model_config(converted, NO_LIMIT).estimated_params >= model.count_params()


def test_every_family_with_weights_is_bounded() -> None:
    x1, x3, x4 = keras.Input((16,)), keras.Input((10, 4)), keras.Input((8, 8, 3))
    ints = keras.Input((5,), dtype="int32")
    outs = [
        L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c")(x1),
        L.EinsumDense("abc,cd->abd", output_shape=(None, 6))(x3),
        L.Embedding(10, 3)(ints),
        L.PReLU()(x1),
        L.LayerNormalization()(x3),
        L.RMSNormalization()(x3),
        L.GroupNormalization(groups=2)(x3),
        L.BatchNormalization()(x4),
        L.MultiHeadAttention(2, 4, value_dim=3)(x3, x3),
        L.Bidirectional(L.GRU(3))(x3),
        L.TimeDistributed(L.Dense(2))(x3),
        L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.SimpleRNNCell(2)]))(x3),
        L.LSTM(3, return_sequences=True)(x3),
    ]
    outs += [
        layer(x3)
        for layer in (
            L.Conv1D(2, 3),
            L.Conv1DTranspose(2, 3, strides=2),
            L.DepthwiseConv1D(3),
            L.SeparableConv1D(2, 3),
        )
    ]
    outs += [
        layer(x4)
        for layer in (
            L.Conv2D(2, 3, groups=1),
            L.DepthwiseConv2D(3, depth_multiplier=2),
            L.SeparableConv2D(4, 3),
            L.Conv2DTranspose(2, 3),
        )
    ]
    model = keras.Model([x1, x3, x4, ints], outs)
    for config in (config_of(model), without_build_configs(config_of(model))):
        bound = validate_model_config(config).estimated_params
        assert model.count_params() <= bound <= 1.05 * model.count_params()


def test_a_build_config_cannot_hide_a_wider_input() -> None:
    """Keras builds from build_config and again from the graph's shape: the
    larger counts."""
    bound = parameter_bound(dense_after_input(1000, 1000, build_width=10))
    assert bound == (1000 + 1) * 1000
    assert parameter_bound(dense_after_input(10, 1000, build_width=1000)) == (1000 + 1) * 1000


# --- Bombs and configs that cannot be checked -------------------------------------------


def test_a_wide_dense_without_build_config_is_counted_from_the_input_shape() -> None:
    """The issue's reproducer: estimated at 30,000 before, 225 M built."""
    with pytest.raises(ModelConfigError, match="225,015,000 counted by layer 'wide' \\(Dense\\)"):
        validate_model_config(dense_after_input(15000, 15000))


def test_a_100000_by_100000_dense_is_refused() -> None:
    with pytest.raises(ModelConfigError, match="more than 200,000,000 parameters"):
        validate_model_config(dense_after_input(100_000, 100_000))


def test_a_config_without_input_shapes_is_refused_with_the_reason() -> None:
    config = dense_after_input(8, 4)
    del config["config"]["layers"][0]
    with pytest.raises(ModelConfigError, match="without input shapes cannot be checked") as info:
        validate_model_config(config)
    assert "layer 'wide' (Dense) at config.layers[0]" in str(info.value)


def test_a_huge_embedding_needs_no_input_shape_to_be_refused() -> None:
    inputs = keras.Input((5,), dtype="int32")
    config = without_build_configs(config_of(keras.Model(inputs, L.Embedding(10, 3, name="emb")(inputs))))
    config["config"]["layers"][1]["config"]["input_dim"] = 10**9
    with pytest.raises(ModelConfigError, match="layer 'emb' \\(Embedding\\)"):
        validate_model_config(config)


def test_a_merge_with_an_unknown_input_does_not_understate_the_next_layer() -> None:
    """Concatenate of a known and an unknown width is unknown, not the known one."""
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    merged = L.Concatenate(name="cat")([a, L.Dense(4000, name="wide")(b)])
    config = config_of(keras.Model([a, b], L.Dense(3, name="head")(merged)))
    config = without_build_configs(config)
    config["config"]["layers"][2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "nowhere"
    with pytest.raises(ModelConfigError, match="layer 'wide' \\(Dense\\)"):
        validate_model_config(config)


def test_arguments_of_the_wrong_type_leave_shapes_unknown_not_crashed() -> None:
    """Shape rules read arguments the count checks do not cover (Permute's
    dims, attention's output_shape): a wrong type makes the shape unknown."""
    x = keras.Input((4, 6), name="x")
    h = L.Permute((2, 1), name="perm")(x)
    h = L.MultiHeadAttention(2, 3, output_shape=5, name="mha")(h, h)
    config = config_of(keras.Model(x, L.Dense(2, name="out")(h)))
    config["config"]["layers"][1]["config"]["dims"] = [2, "a"]
    with pytest.raises(ModelConfigError, match="layer 'mha' \\(MultiHeadAttention\\)"):
        parameter_bound(without_build_configs(config))  # its input width is unknown now
    assert parameter_bound(config) > 0  # the build_configs still state the widths
    config["config"]["layers"][2]["config"]["output_shape"] = ["x"]
    with pytest.raises(ModelConfigError, match="layer 'mha' \\(MultiHeadAttention\\)"):
        parameter_bound(config)


# --- Arguments that must be counts -----------------------------------------------------------


@pytest.fixture
def conv_config() -> dict[str, Any]:
    inputs = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, strides=1, name="conv")(inputs)
    h = L.ZeroPadding2D(((1, 1), (2, 2)), name="pad")(h)
    h = L.Reshape((-1, 4), name="reshape")(h)
    return config_of(keras.Model(inputs, L.Dense(2, name="out")(h)))


def test_the_count_arguments_of_real_layers_pass(conv_config: dict[str, Any]) -> None:
    assert validate_model_config(conv_config).num_layers == 6


@pytest.mark.parametrize(
    "layer, argument, value, expected",
    [
        (4, "units", -5, "a positive integer"),
        (4, "units", 2.5, "a positive integer"),
        (4, "units", True, "a positive integer"),
        (1, "filters", 0, "a positive integer"),
        (1, "kernel_size", [3, 0], "a positive integer or a list of them"),
        (1, "strides", "2", "a positive integer or a list of them"),
        (2, "padding", [[1, -1], [2, 2]], "a non-negative integer (or lists of them)"),
        (3, "target_shape", [-2, 4], "a list of positive integers (or -1)"),
    ],
)
def test_a_count_argument_that_is_not_a_count_is_refused_by_name(
    conv_config: dict[str, Any], layer: int, argument: str, value: Any, expected: str
) -> None:
    entry = conv_config["config"]["layers"][layer]
    entry["config"][argument] = value
    with pytest.raises(ModelConfigError) as info:
        validate_model_config(conv_config)
    message = str(info.value)
    assert f"Expected {argument!r} to be {expected}. Received: {value!r}" in message
    assert f"config.layers[{layer}].config.{argument}, in layer '{entry['name']}'" in message
