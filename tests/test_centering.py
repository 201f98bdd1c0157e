"""Specifications of AutoInit++ (`autoinit.centering`, ``AutoInit(center_activations=True)``):
real Keras models, rewritten, initialized, probed and saved."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import special  # noqa: E402

from autoinit import zoo  # noqa: E402
from autoinit.autoinit import AutoInit  # noqa: E402
from autoinit.centering import center_config, center_model, gaussian_mean  # noqa: E402
from autoinit.errors import UnsupportedLayerWarning  # noqa: E402
from autoinit.estimators.activations import ACTIVATIONS, relu_family  # noqa: E402
from autoinit.probe import compare, probe  # noqa: E402

RELU_MEAN = 1.0 / math.sqrt(2.0 * math.pi)  # E[max(z, 0)], z ~ N(0, 1)
WIDTH = 256


# --------------------------------------------------------------------------- #
# Models
# --------------------------------------------------------------------------- #
def separate_mlp(activation: str = "relu", depth: int = 3) -> keras.Model:
    """Dense -> Activation layers, then a linear head: every activation is hidden."""
    inputs = keras.Input((64,), name="x")
    y = inputs
    for i in range(1, depth + 1):
        y = keras.layers.Dense(WIDTH, name=f"dense{i}")(y)
        y = keras.layers.Activation(activation, name=f"act{i}")(y)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(y), name="separate_mlp")


def fused_mlp(activation: str = "relu", depth: int = 3) -> keras.Model:
    inputs = keras.Input((64,), name="x")
    y = inputs
    for i in range(1, depth + 1):
        y = keras.layers.Dense(WIDTH, activation=activation, name=f"dense{i}")(y)
    return keras.Model(inputs, keras.layers.Dense(10, name="head")(y), name="fused_mlp")


def sequential_mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(WIDTH, activation="relu", name="dense1"),
            keras.layers.Dense(WIDTH, name="dense2"),
            keras.layers.LeakyReLU(0.2, name="leaky"),
            keras.layers.Dense(WIDTH, activation="gelu", name="dense3"),
            keras.layers.Dense(10, activation="sigmoid", name="head"),
        ],
        name="sequential_mlp",
    )


def shared_and_nested() -> keras.Model:
    """A shared fused Dense called twice, and a nested block (fused conv-free Dense + ELU layer) called twice."""
    inner_in = keras.Input((32,), name="inner_in")
    h = keras.layers.Dense(32, activation="swish", name="inner_dense")(inner_in)
    h = keras.layers.ELU(name="inner_elu")(keras.layers.Dense(32, name="inner_linear")(h))
    block = keras.Model(inner_in, h, name="block")
    inputs = keras.Input((32,), name="x")
    shared = keras.layers.Dense(32, activation="relu", name="shared")
    y = shared(shared(inputs))
    y = block(block(y))
    y = keras.layers.Add(name="add")([y, inputs])
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(y), name="shared_nested")


def by_name(records: list[dict]) -> dict[str, dict]:
    return {record["name"]: record for record in records}


# --------------------------------------------------------------------------- #
# mu_f
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        (ACTIVATIONS["relu"], RELU_MEAN),
        (ACTIVATIONS["sigmoid"], 0.5),
        (ACTIVATIONS["exponential"], math.exp(0.5)),
        # E[elu(z)] = E[z; z > 0] + E[e^z - 1; z < 0] = phi(0) + e^(1/2) Phi(-1) - 1/2
        (ACTIVATIONS["elu"], RELU_MEAN + math.exp(0.5) * special.ndtr(-1.0) - 0.5),
        (relu_family(negative_slope=0.3), 0.7 * RELU_MEAN),
        (ACTIVATIONS["tanh"], 0.0),
    ],
)
def test_gaussian_mean_matches_closed_forms(activation, expected):
    assert gaussian_mean(activation) == pytest.approx(expected, abs=1e-7)


# --------------------------------------------------------------------------- #
# Measured means: AutoInit ~0.4 after ReLU, AutoInit++ ~0
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("builder", [separate_mlp, fused_mlp])
def test_autoinit_plus_plus_centres_every_measured_activation_output(builder):
    plain = AutoInit(seed=0).initialize_model(builder())
    centred, estimates = AutoInit(seed=0, center_activations=True).initialize_model(
        builder(), return_estimates=True
    )
    before = by_name(probe(plain, batch_size=512, seed=1))
    after = by_name(probe(centred, batch_size=512, seed=1))

    activations = [
        name for name in before if name.startswith(("act", "dense")) and before[name]["mean"] > 0.1
    ]
    assert len(activations) == 3  # the three ReLU outputs, mean ~0.4 under AutoInit
    for name in activations:
        assert before[name]["mean"] == pytest.approx(RELU_MEAN, abs=0.05)
        shifted = f"{name}_centered"
        assert after[shifted]["mean"] == pytest.approx(0.0, abs=0.05), shifted
        assert after[shifted]["var"] == pytest.approx(before[name]["var"], rel=0.2)

    predicted = by_name(estimates)
    for name in activations:
        assert predicted[f"{name}_centered"]["class_name"] == "Rescaling"
        assert predicted[f"{name}_centered"]["mean"] == pytest.approx(0.0, abs=0.01)
    weighted = [e for e in estimates if e["target"] is not None]
    assert [e["name"] for e in weighted] == ["dense1", "dense2", "dense3", "head"]
    for estimate in weighted:
        ratio = (after[estimate["name"]]["mean"] ** 2 + after[estimate["name"]]["var"]) / estimate["target"]
        assert 0.5 <= ratio <= 2.0, estimate["name"]


def test_parameter_count_and_weight_draws_are_unchanged_and_seeded():
    model = fused_mlp()
    count = model.count_params()
    first = AutoInit(seed=3, center_activations=True).initialize_model(model)
    again = AutoInit(seed=3, center_activations=True).initialize_model(fused_mlp())
    other = AutoInit(seed=4, center_activations=True).initialize_model(fused_mlp())
    assert first.count_params() == again.count_params() == count
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        first.get_layer("dense1").kernel.numpy(), other.get_layer("dense1").kernel.numpy()
    )


# --------------------------------------------------------------------------- #
# The rewrite
# --------------------------------------------------------------------------- #
def test_fused_activations_are_split_and_consumers_rewired():
    model = fused_mlp()
    centred, found = center_model(model)
    assert [c.layer for c in found] == ["dense1", "dense2", "dense3"]
    assert all(c.split and c.activation == "relu" for c in found)
    assert found[0].mean == pytest.approx(RELU_MEAN, abs=1e-9)
    names = [layer.name for layer in centred.layers]
    assert names[1:4] == ["dense1", "dense1_activation", "dense1_centered"]
    assert centred.get_layer("dense1").get_config()["activation"] == "linear"
    assert centred.get_layer("dense1_activation").get_config()["activation"] == "relu"
    rescaling = centred.get_layer("dense1_centered").get_config()
    assert (rescaling["scale"], rescaling["offset"]) == (1.0, pytest.approx(-RELU_MEAN))
    # dense2 now reads the centred signal: the graph is x -> dense1 -> relu -> shift -> dense2.
    assert centred.get_layer("dense2").input is centred.get_layer("dense1_centered").output
    # Same weights; the function is the original one with mu subtracted after each hidden ReLU.
    x = np.random.default_rng(0).standard_normal((8, 64)).astype("float32")
    y = x
    for name in ("dense1", "dense2", "dense3"):
        kernel, bias = model.get_layer(name).get_weights()
        y = np.maximum(y @ kernel + bias, 0.0) - RELU_MEAN
    kernel, bias = model.get_layer("head").get_weights()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(centred(x)), y @ kernel + bias, rtol=1e-4, atol=1e-5
    )
    assert model.get_layer("dense1").get_config()["activation"] == "relu"  # the given model is untouched


def test_sequential_models_get_layers_inserted_after_and_keep_their_output_activation():
    centred, found = center_model(sequential_mlp())
    assert isinstance(centred, keras.Sequential)
    assert [(c.layer, c.activation) for c in found] == [
        ("dense1", "relu"),
        ("leaky", "LeakyReLU(0.2)"),
        ("dense3", "gelu"),
    ]
    assert [layer.name for layer in centred.layers] == [
        "dense1", "dense1_activation", "dense1_centered",
        "dense2", "leaky", "leaky_centered",
        "dense3", "dense3_activation", "dense3_centered",
        "head",
    ]  # fmt: skip
    assert centred.get_layer("head").get_config()["activation"] == "sigmoid"  # the prediction keeps its range


def test_shared_layers_and_nested_models_are_centred_once_per_call():
    model = shared_and_nested()
    centred, found = center_model(model)
    assert [c.layer for c in found] == ["shared", "block/inner_dense", "block/inner_elu"]
    block = centred.get_layer("block")
    assert [layer.name for layer in block.layers] == [
        "inner_in", "inner_dense", "inner_dense_activation", "inner_dense_centered",
        "inner_linear", "inner_elu", "inner_elu_centered",
    ]  # fmt: skip
    records = [r["name"] for r in probe(centred, batch_size=16)]
    for name in (
        "shared_centered",
        "shared_centered#2",
        "block/inner_elu_centered",
        "block#2/inner_elu_centered#2",
    ):
        assert name in records
    # The nested block's output (the ELU) is rewired to its shift, seen from outside as well.
    x = np.random.default_rng(1).standard_normal((4, 32)).astype("float32")
    inner = keras.Model(block.inputs, block.get_layer("inner_elu").output)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(block([x])),
        keras.ops.convert_to_numpy(inner([x])) - found[2].mean,
        rtol=1e-5,
        atol=1e-6,
    )
    for layer in model.layers:  # weights travelled with their layers
        for a, b in zip(layer.get_weights(), centred.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_zero_mean_activations_and_axis_activations_are_left_alone():
    tanh = separate_mlp("tanh")
    same, found = center_model(tanh)
    assert found == [] and same is tanh
    plain_estimates = AutoInit(seed=0).estimate(separate_mlp("tanh"))
    plus_estimates = AutoInit(seed=0, center_activations=True).estimate(separate_mlp("tanh"))
    assert [e["name"] for e in plus_estimates] == [e["name"] for e in plain_estimates]
    # softmax (axis-wise), recurrent cells and the softmax head of text_rnn: nothing to insert.
    assert center_model(zoo.text_rnn())[1] == []


def test_rewrite_is_idempotent_and_config_level():
    config = json.loads(fused_mlp().to_json())
    once, found = center_config(config)
    twice, again = center_config(once)
    assert len(found) == 3 and again == [] and twice == once
    assert config["config"]["layers"][1]["config"]["activation"] == "relu"  # input config not modified
    model = keras.saving.deserialize_keras_object(once)
    assert [layer.name for layer in model.layers][-2:] == ["dense3_centered", "head"]


def test_unresolvable_custom_activation_warns_and_is_left_uncentred():
    def square_plus(x):
        return x * x + 1.0

    inputs = keras.Input((8,), name="x")
    y = keras.layers.Dense(8, activation=square_plus, name="custom")(inputs)
    config = keras.Model(inputs, keras.layers.Dense(2, name="head")(y)).to_json()
    with pytest.warns(UnsupportedLayerWarning, match="square_plus"):
        _, found = center_config(config)
    assert found == []
    _, found = center_config(config, custom_objects={"square_plus": square_plus})
    assert [c.layer for c in found] == ["custom"]
    assert found[0].mean == pytest.approx(2.0, abs=1e-6)  # E[z^2 + 1]


# --------------------------------------------------------------------------- #
# Saving, compare() and the CLI
# --------------------------------------------------------------------------- #
def test_saved_model_reloads_with_stock_keras_and_computes_the_same(tmp_path):
    model = AutoInit(seed=0, center_activations=True).initialize_model(shared_and_nested().to_json())
    path = tmp_path / "plus.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    x = np.random.default_rng(2).standard_normal((4, 32)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6
    )
    assert "Rescaling" in {type(layer).__name__ for layer in loaded.layers}


def test_compare_measures_every_series_on_the_centred_model_and_flags_it():
    traces = compare(
        separate_mlp(), baselines=("default", "he_normal"), seed=0, batch_size=256, center_activations=True
    )
    assert traces["center_activations"] is True
    layers = by_name(traces["layers"])
    assert layers["act1_centered"]["class_name"] == "Rescaling"
    for series in ("default", "he_normal", "autoinit"):
        assert set(layers["act1_centered"][series]) == {"mean", "var"}
    assert layers["act2_centered"]["autoinit"]["mean"] == pytest.approx(0.0, abs=0.05)
    # The shift assumes N(0, 1) pre-activations, which AutoInit delivers and Glorot uniform does not.
    assert layers["act2_centered"]["default"]["mean"] < -0.1
    assert compare(separate_mlp(), batch_size=32)["center_activations"] is False


def test_cli_center_activations_flag(tmp_path, capsys):
    from autoinit.cli import main

    source = tmp_path / "mlp.json"
    source.write_text(fused_mlp().to_json())
    out, traces = tmp_path / "plus.keras", tmp_path / "traces.json"
    assert (
        main(
            [
                "init",
                str(source),
                "-o",
                str(out),
                "--traces",
                str(traces),
                "--batch-size",
                "64",
                "--center-activations",
                "-q",
            ]
        )
        == 0
    )
    payload = json.loads(traces.read_text())
    assert payload["center_activations"] is True
    assert "dense1_centered" in {layer["name"] for layer in payload["layers"]}
    assert "dense1_centered" in [layer.name for layer in keras.saving.load_model(out).layers]
    assert main(["init", str(source), "-o", str(tmp_path / "plain.keras"), "-q"]) == 0
    assert "dense1_centered" not in [
        layer.name for layer in keras.saving.load_model(tmp_path / "plain.keras").layers
    ]
    capsys.readouterr()
    main(["init", "--help"])
    assert "AutoInit++" in capsys.readouterr().out
