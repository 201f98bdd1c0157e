"""Specifications of the model zoo (`autoinit.zoo`): real Keras models, built and run."""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from autoinit import zoo  # noqa: E402
from autoinit.errors import ModelConfigError  # noqa: E402

# ResNet-812 takes long to build and run on a 2-core machine; its arithmetic
# is checked through `resnet_stage_blocks` instead.
BUILDABLE = [name for name in zoo.ZOO if not name.startswith("preact_resnet812")]
# Round-tripping the 500-layer ResNet-164 through JSON is slow and adds nothing
# over ResNet-56 (same layer classes).
ROUND_TRIPPED = [name for name in BUILDABLE if not name.startswith("preact_resnet164")]


@functools.cache
def default_model(name: str) -> keras.Model:
    """Each zoo model with default arguments, built once per test session."""
    return zoo.build(name)


def tiny_batch(model: keras.Model, batch: int = 2) -> np.ndarray | list[np.ndarray]:
    """Random inputs for `model`: Gaussian floats, or token ids below every vocab size."""
    rng = np.random.default_rng(0)
    arrays = []
    for tensor in model.inputs:
        shape = (batch, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            arrays.append(rng.integers(0, 8, size=shape).astype("int32"))
        else:
            arrays.append(rng.standard_normal(shape).astype("float32"))
    return arrays[0] if len(arrays) == 1 else arrays


def class_names(config: Any) -> Iterator[str]:
    """Every `class_name` in a (nested) Keras config: layers, wrapped and nested layers."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config["class_name"]
        for value in config.values():
            yield from class_names(value)
    elif isinstance(config, list):
        for value in config:
            yield from class_names(value)


def count(model: keras.Model, cls: type) -> int:
    return sum(isinstance(layer, cls) for layer in model.layers)


# --- every model -------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDABLE)
def test_each_zoo_model_runs_a_forward_pass_with_the_expected_output_shape(name: str) -> None:
    model = default_model(name)
    outputs = keras.ops.convert_to_numpy(model(tiny_batch(model), training=False))
    expected_width = {"mlp": 256, "transformer_encoder": 2, "text_cnn": 2, "text_rnn": 2}.get(name, 10)
    assert outputs.shape == (2, expected_width)
    assert np.all(np.isfinite(outputs))
    if name != "mlp":  # classifiers end in softmax
        np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", BUILDABLE)
def test_model_name_is_the_registry_name(name: str) -> None:
    assert default_model(name).name == name


@pytest.mark.parametrize("name", BUILDABLE)
def test_no_lambda_layer_anywhere_in_the_config(name: str) -> None:
    names = set(class_names(json.loads(default_model(name).to_json())))
    assert "Lambda" not in names
    assert names, "the config walk found no class names at all"


@pytest.mark.parametrize("name", ROUND_TRIPPED)
def test_config_round_trips_through_json_without_custom_objects(name: str) -> None:
    model = default_model(name)
    rebuilt = keras.models.model_from_json(model.to_json())
    assert [type(layer) for layer in rebuilt.layers] == [type(layer) for layer in model.layers]
    assert rebuilt.count_params() == model.count_params()
    rebuilt.set_weights(model.get_weights())
    batch = tiny_batch(model)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(rebuilt(batch, training=False)),
        keras.ops.convert_to_numpy(model(batch, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


# --- registry ----------------------------------------------------------------


def test_list_models_describes_exactly_the_registered_models() -> None:
    entries = zoo.list_models()
    assert [entry["name"] for entry in entries] == list(zoo.ZOO)
    for entry in entries:
        assert set(entry) == {"name", "description", "num_layers", "num_params"}
        assert entry["description"] and entry["num_layers"] > 0 and entry["num_params"] > 0


@pytest.mark.parametrize("name", BUILDABLE)
def test_list_models_counts_match_the_built_default_model(name: str) -> None:
    entry = next(entry for entry in zoo.list_models() if entry["name"] == name)
    model = default_model(name)
    assert (entry["num_layers"], entry["num_params"]) == (len(model.layers), model.count_params())


def test_the_registry_holds_the_stable_names() -> None:
    assert set(zoo.ZOO) == {
        "all_cnn_c", "preact_resnet56", "preact_resnet56_nobn", "preact_resnet164",
        "preact_resnet164_nobn", "preact_resnet812", "preact_resnet812_nobn", "transformer_encoder",
        "text_cnn", "text_rnn", "codeepneat", "mlp",
    }  # fmt: skip


def test_unknown_zoo_name_raises_a_value_error_listing_every_valid_name() -> None:
    with pytest.raises(ModelConfigError) as info:
        zoo.build("resnet9000")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "resnet9000" in message
    for name in zoo.ZOO:
        assert name in message


def test_build_passes_keyword_arguments_to_the_builder() -> None:
    model = zoo.build("mlp", depth=3, width=16, input_dim=4)
    assert count(model, keras.layers.Dense) == 3
    assert model.output_shape == (None, 16)


# --- pre-activation ResNets --------------------------------------------------


def test_resnet56_has_55_convs_plus_2_projection_shortcuts() -> None:
    # 1 stem conv + 3 stages x 9 basic units x 2 convs = 55; the units that
    # widen 16->32 and 32->64 add a 1x1 projection each; Dense is layer 56.
    model = default_model("preact_resnet56")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    shortcuts = [layer for layer in convs if layer.name.endswith("_shortcut")]
    assert len(convs) == 57
    assert len(shortcuts) == 2
    assert all(layer.kernel_size == (1, 1) for layer in shortcuts)
    assert count(model, keras.layers.Dense) == 1


def test_resnet164_has_163_convs_plus_3_projection_shortcuts() -> None:
    # 1 stem conv + 3 stages x 18 bottleneck units x 3 convs = 163; the first
    # unit of every stage changes the width (16->64, 64->128, 128->256) and so
    # has a 1x1 projection: 166 Conv2D layers in all, plus one Dense.
    model = default_model("preact_resnet164")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 166
    assert sum(layer.name.endswith("_shortcut") for layer in convs) == 3
    assert count(model, keras.layers.Dense) == 1
    assert model.get_layer("stage3_unit18_conv3").filters == 256


def test_resnet_with_batch_norm_normalizes_before_every_residual_conv_and_at_the_end() -> None:
    assert count(default_model("preact_resnet56"), keras.layers.BatchNormalization) == 27 * 2 + 1
    assert count(default_model("preact_resnet164"), keras.layers.BatchNormalization) == 54 * 3 + 1


@pytest.mark.parametrize("name", ["preact_resnet56_nobn", "preact_resnet164_nobn"])
def test_unnormalized_resnet_has_no_batch_normalization(name: str) -> None:
    model = default_model(name)
    assert count(model, keras.layers.BatchNormalization) == 0
    assert count(model, keras.layers.ReLU) > 0  # the pre-activations remain


def test_resnet_depth_arithmetic_follows_he_et_al() -> None:
    assert zoo.resnet_stage_blocks(56) == ("basic", 9)
    assert zoo.resnet_stage_blocks(110) == ("basic", 18)
    assert zoo.resnet_stage_blocks(164) == ("bottleneck", 18)
    assert zoo.resnet_stage_blocks(812) == ("bottleneck", 90)
    assert zoo.resnet_stage_blocks(164, block="basic") == ("basic", 27)
    assert zoo.resnet_stage_blocks(56, block="bottleneck") == ("bottleneck", 6)


@pytest.mark.parametrize(
    ("depth", "block"),
    [(57, "auto"), (165, "auto"), (2, "auto"), (11, "basic"), (14, "bottleneck")],
)
def test_invalid_resnet_depth_raises_a_value_error_naming_the_depth(depth: int, block: str) -> None:
    with pytest.raises(ValueError, match=f"depth={depth}"):
        zoo.preact_resnet(depth=depth, block=block)


def test_unknown_resnet_block_type_raises() -> None:
    with pytest.raises(ValueError, match="block='wide'"):
        zoo.preact_resnet(depth=56, block="wide")


WEIGHTED = (keras.layers.Conv2D, keras.layers.Dense)


def test_resnet_uses_the_given_kernel_initializer_for_every_conv_and_dense() -> None:
    default = default_model("preact_resnet56_nobn")
    weighted = [layer for layer in default.layers if isinstance(layer, WEIGHTED)]
    assert {type(layer.kernel_initializer).__name__ for layer in weighted} == {"HeNormal"}
    glorot = zoo.preact_resnet(depth=20, batch_norm=False, initializer="glorot_uniform")
    weighted = [layer for layer in glorot.layers if isinstance(layer, WEIGHTED)]
    assert {type(layer.kernel_initializer).__name__ for layer in weighted} == {"GlorotUniform"}
    assert glorot.name == "preact_resnet20_nobn"


# --- All-CNN-C ---------------------------------------------------------------


def test_all_cnn_c_has_nine_linear_convs_with_activations_as_separate_layers() -> None:
    model = zoo.all_cnn_c(activation="selu", dropout_rate=0.3, input_dropout=0.1)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    activations = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert [layer.filters for layer in convs] == [96, 96, 96, 192, 192, 192, 192, 192, 10]
    assert [layer.strides for layer in convs].count((2, 2)) == 2
    assert {layer.get_config()["activation"] for layer in convs} == {"linear"}
    assert len(activations) == 8
    assert {layer.get_config()["activation"] for layer in activations} == {"selu"}
    rates = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.1, 0.3, 0.3]
    assert isinstance(model.layers[-1], keras.layers.Softmax)
    assert model.count_params() == 1_369_738  # Springenberg et al.'s All-CNN-C, ~1.4M


# --- language models ---------------------------------------------------------


def test_transformer_with_positions_takes_token_and_position_ids() -> None:
    model = zoo.transformer_encoder(seq_len=8, num_blocks=1, use_positions=True)
    assert [tensor.name for tensor in model.inputs] == ["tokens", "positions"]
    tokens = np.arange(16, dtype="int32").reshape(2, 8)
    positions = np.tile(np.arange(8, dtype="int32"), (2, 1))
    assert tuple(model([tokens, positions]).shape) == (2, 2)
    assert count(model, keras.layers.MultiHeadAttention) == 1


def test_transformer_rejects_width_not_divisible_by_heads() -> None:
    with pytest.raises(ValueError, match="d_model=30, num_heads=4"):
        zoo.transformer_encoder(d_model=30, num_heads=4)


def test_text_cnn_has_three_kernel_size_branches_merged_by_concatenate() -> None:
    model = default_model("text_cnn")
    kernels = [l.kernel_size for l in model.layers if isinstance(l, keras.layers.Conv1D)]
    assert kernels == [(3,), (4,), (5,)]
    assert count(model, keras.layers.Concatenate) == 1
    assert count(model, keras.layers.SpatialDropout1D) == 1


def test_text_rnn_stacks_a_bidirectional_gru_and_an_lstm() -> None:
    model = default_model("text_rnn")
    (bidirectional,) = [l for l in model.layers if isinstance(l, keras.layers.Bidirectional)]
    assert isinstance(bidirectional.forward_layer, keras.layers.GRU)
    assert count(model, keras.layers.LSTM) == 1


# --- CoDeepNEAT --------------------------------------------------------------


def test_codeepneat_calls_one_nested_module_model_at_least_twice() -> None:
    model = default_model("codeepneat")
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 1
    # In the saved config each call of a layer is one inbound node.
    (entry,) = [e for e in model.get_config()["layers"] if e["name"] == nested[0].name]
    assert len(entry["inbound_nodes"]) >= 2
    assert count(nested[0], keras.layers.Conv2D) >= 2


def test_codeepneat_combines_branches_with_add_concatenate_and_multiply() -> None:
    model = default_model("codeepneat")
    kinds = Counter(type(layer).__name__ for layer in model.layers)
    for kind in ("Add", "Concatenate", "Multiply", "MaxPooling2D", "Flatten", "Dense"):
        assert kinds[kind] >= 1, kind


def test_codeepneat_seed_changes_hyperparameters_but_not_topology() -> None:
    models = [zoo.codeepneat_net(seed=seed) for seed in range(3)]
    topologies = {tuple(type(layer).__name__ for layer in m.layers) for m in models}
    assert len(topologies) == 1
    assert len({m.count_params() for m in models}) > 1  # hidden width differs


# --- MLP ---------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "tanh", "selu", "gelu", "sigmoid"])
def test_mlp_fuses_the_given_activation_into_every_dense_layer(activation: str) -> None:
    model = zoo.mlp(activation=activation, depth=4, width=8, input_dim=3)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 4
    assert {layer.get_config()["activation"] for layer in dense} == {activation}
    assert tuple(model(np.zeros((2, 3), "float32")).shape) == (2, 8)
