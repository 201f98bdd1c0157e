"""The AutoInit class: public API, arguments, errors, and end-to-end
correctness on real Keras models (measured with Gaussian probes)."""

from __future__ import annotations

import json
import math
import warnings

import keras
import numpy as np
import pytest

from autoinit import (
    AutoInit,
    AutoInitError,
    LayerOutputDistributionEstimator,
    ModelConfigError,
    UnsupportedLayerWarning,
)
from autoinit.probe import probe

L = keras.layers


def mlp(activation="relu", width=64, depth=3, input_dim=32):
    x = inputs = keras.Input((input_dim,), name="x")
    for i in range(depth):
        x = L.Dense(width, activation=activation, name=f"dense{i}")(x)
    return keras.Model(inputs, x, name="mlp")


def kernel_variance(layer, attr="kernel"):
    return float(np.var(keras.ops.convert_to_numpy(getattr(layer, attr))))


# -- API ---------------------------------------------------------------------


def test_original_import_path_still_works():
    from autoinit.estimators.estimate_layer_output_distribution import (
        LayerOutputDistributionEstimator as Legacy,
    )

    assert Legacy is LayerOutputDistributionEstimator


@pytest.mark.parametrize("form", ["model", "dict", "json"])
def test_initialize_model_accepts_model_dict_and_json(form):
    model = mlp()
    given = {"model": model, "dict": json.loads(model.to_json()), "json": model.to_json()}[form]
    result, estimates = AutoInit(seed=1).initialize_model(given, return_estimates=True)
    assert isinstance(result, keras.Model) and result.built
    for record in estimates:
        if record["target"] is not None:
            layer = result.get_layer(record["name"])
            assert kernel_variance(layer) == pytest.approx(record["scale"], rel=0.15)
            assert np.all(keras.ops.convert_to_numpy(layer.bias) == 0)


def test_estimates_are_json_records_in_topological_order():
    model = mlp()
    _, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    json.dumps(estimates)  # no default=: plain JSON types only
    assert [r["name"] for r in estimates] == ["x", "dense0", "dense1", "dense2"]
    first = estimates[1]
    assert {"name", "class_name", "mean", "var", "has_weights", "scale", "estimator", "target"} <= set(first)
    assert first["has_weights"] and first["estimator"] == "builtin" and first["target"] == 1.0
    # Dense on N(0,1) input with fan-in 32: Var(W) = 1/32 on average over
    # draws; conditioned on the draw, one scalar away from it.
    assert first["scale"] == pytest.approx(1 / 32, rel=0.3)
    unconditioned = AutoInit(seed=0, weight_init_config={"condition_on_draw": False})
    assert unconditioned.initialize_model(mlp(), return_estimates=True)[1][1]["scale"] == pytest.approx(
        1 / 32
    )
    # Without drawing weights the estimate is the expectation over draws:
    # ReLU of N(0, 1), mean 1/sqrt(2 pi), variance 1/2 - 1/(2 pi).
    expected = AutoInit(seed=0).estimate(mlp())[1]
    assert expected["mean"] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-6)
    assert expected["var"] == pytest.approx(0.5 - 1 / (2 * math.pi), rel=1e-6)
    # With weights drawn it is conditioned on the draw: close to, not equal to, that.
    assert first["mean"] == pytest.approx(expected["mean"], rel=0.05) and first["mean"] != expected["mean"]
    assert first["var"] == pytest.approx(expected["var"], rel=0.1)


def tiny_conv_model():
    """Few inputs per unit: one draw of the weights is far from its expectation."""
    x = inputs = keras.Input((12, 4))
    x = L.DepthwiseConv1D(3, padding="same", name="dw")(x)
    x = L.Conv1D(6, 3, padding="same", groups=2, activation="relu", name="grouped")(x)
    x = L.SeparableConv1D(4, 3, padding="same", name="sep")(x)
    x = L.Conv1DTranspose(4, 3, strides=2, padding="same", name="tconv")(x)
    return keras.Model(inputs, L.Dense(3, name="head")(L.Flatten()(x)))


def test_conditioning_on_the_draw_hits_the_target_for_the_drawn_weights():
    names = ("dw", "grouped", "sep", "tconv", "head")
    model, estimates = AutoInit(seed=4).initialize_model(tiny_conv_model(), return_estimates=True)
    records = {r["name"]: r for r in estimates}
    for name in names:  # the realised pre-activation second moment is the target
        pre = records[name].get("pre_activation") or records[name]
        assert pre["mean"] ** 2 + pre["var"] == pytest.approx(1.0, rel=1e-5), name
    # The depthwise layer sees i.i.d. input (its realised moments are exact):
    # measured on the target. (Deeper layers see fluctuations correlated
    # across positions and channels, which the moments do not carry.)
    dw = next(r for r in probe(model, batch_size=4096, seed=4) if r["name"] == "dw")
    assert dw["mean"] ** 2 + dw["var"] == pytest.approx(1.0, rel=0.03)
    # Without conditioning the scale is the expectation over draws: this
    # draw (3 taps x 4 channels) lands at 0.36x the target.
    plain = AutoInit(seed=4, weight_init_config={"condition_on_draw": False})
    model, plain_estimates = plain.initialize_model(tiny_conv_model(), return_estimates=True)
    assert {r["name"]: r for r in plain_estimates}["dw"]["scale"] != records["dw"]["scale"]
    dw = next(r for r in probe(model, batch_size=4096, seed=4) if r["name"] == "dw")
    assert dw["mean"] ** 2 + dw["var"] < 0.5


def test_condition_on_draw_must_be_a_bool():
    with pytest.raises(AutoInitError, match="condition_on_draw"):
        AutoInit(weight_init_config={"condition_on_draw": "yes"})


def test_same_seed_gives_identical_weights_and_other_seed_differs():
    config = mlp().to_json()
    a = AutoInit(seed=7).initialize_model(config).get_weights()
    b = AutoInit(seed=7).initialize_model(config).get_weights()
    c = AutoInit(seed=8).initialize_model(config).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def unnamed_architecture() -> keras.Model:
    """No layer is named: Keras numbers them per process (``dense_12``...)."""
    inner_in = keras.Input((8, 16))
    inner = keras.Model(inner_in, keras.layers.Dense(16, activation="relu")(inner_in))
    inputs = keras.Input((8, 16))
    x = keras.layers.Conv1D(16, 3, padding="same", activation="relu")(inputs)
    x = inner(inner(x))  # nested and shared
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8))(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def test_seeds_follow_the_place_in_the_graph_not_the_layer_names():
    first, second = unnamed_architecture(), unnamed_architecture()
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    a = AutoInit(seed=7).initialize_model(first).get_weights()
    b = AutoInit(seed=7).initialize_model(second).get_weights()
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    c = AutoInit(seed=8).initialize_model(unnamed_architecture()).get_weights()
    assert sum(not np.array_equal(x, y) for x, y in zip(a, c)) >= 8  # every drawn kernel


def test_seed_none_draws_a_seed_and_records_it():
    ai = AutoInit()
    ai.initialize_model(mlp())
    assert isinstance(ai.seed, int)


@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform", "orthogonal"])
def test_every_distribution_gives_the_chosen_variance(distribution):
    model = mlp(width=128, input_dim=256, depth=1)
    model, estimates = AutoInit(weight_init_config={"distribution": distribution}, seed=0).initialize_model(
        model, return_estimates=True
    )
    kernel = keras.ops.convert_to_numpy(model.get_layer("dense0").kernel)
    scale = estimates[1]["scale"]
    assert np.var(kernel) == pytest.approx(scale, rel=0.1)
    if distribution == "uniform":
        assert np.abs(kernel).max() <= math.sqrt(3 * scale) * (1 + 1e-6)
    if distribution == "truncated_normal":
        assert np.abs(kernel).max() <= 2 * math.sqrt(scale) / 0.87962566103423978 * (1 + 1e-6)
    if distribution == "orthogonal":
        gram = kernel.T @ kernel
        assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-5)


def test_unknown_distribution_and_fields_are_refused():
    with pytest.raises(AutoInitError, match="distribution"):
        AutoInit(weight_init_config={"distribution": "laplace"})
    with pytest.raises(AutoInitError, match="Unknown weight_init_config fields"):
        AutoInit(weight_init_config={"distributon": "uniform"})
    with pytest.raises(AutoInitError, match="seed"):
        AutoInit(seed="3")
    with pytest.raises(AutoInitError, match="signal_variance"):
        AutoInit(signal_variance=0)


def test_constrain_weights_attaches_a_serializable_constraint():
    model = AutoInit(weight_init_config={"constrain_weights": True}, seed=0).initialize_model(mlp())
    layer = model.get_layer("dense0")
    assert layer.kernel.constraint is not None
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert rebuilt.get_layer("dense0").kernel_constraint.stddev == pytest.approx(
        math.sqrt(kernel_variance(layer)), rel=0.1
    )


def test_input_data_moments_set_the_first_scale():
    model = mlp(depth=1)
    plain = {"condition_on_draw": False}  # the paper's scale, expected over draws
    _, estimates = AutoInit(
        input_data_mean=2.0, input_data_var=3.0, seed=0, weight_init_config=plain
    ).initialize_model(model, return_estimates=True)
    assert estimates[0]["mean"] == 2.0 and estimates[0]["var"] == 3.0
    assert estimates[1]["scale"] == pytest.approx(1 / (32 * (3.0 + 4.0)))


def test_signal_variance_is_kept_at_weighted_layers():
    model = mlp(activation="linear", width=256, input_dim=256)
    model = AutoInit(signal_variance=4.0, seed=0).initialize_model(model)
    records = {r["name"]: r for r in probe(model, batch_size=512)}
    for name in ("dense0", "dense1", "dense2"):
        assert records[name]["var"] == pytest.approx(4.0, rel=0.15)


def test_initialized_config_rebuilds_the_same_weights():
    ai = AutoInit(seed=3)
    config = ai.initialized_config(mlp().to_json())
    layer_config = config["config"]["layers"][1]["config"]
    assert layer_config["kernel_initializer"]["class_name"] == "VarianceScaling"
    assert layer_config["kernel_initializer"]["config"]["seed"] is not None
    model = AutoInit(seed=3).initialize_model(mlp().to_json())
    rebuilt = keras.saving.deserialize_keras_object(config)
    for x, y in zip(model.get_weights(), rebuilt.get_weights()):
        np.testing.assert_array_equal(x, y)


# -- custom and unknown layers -----------------------------------------------


@keras.saving.register_keras_serializable(package="tests")
class MyCustomLayer(L.Layer):
    """Doubles its input (the original README's example)."""

    def call(self, x):
        return 2.0 * x


class MyCustomOutputDistributionEstimator(LayerOutputDistributionEstimator):
    def estimate(self, means_in, vars_in):
        return means_in[0], 4.0 * vars_in[0]


def custom_model():
    x = inputs = keras.Input((16,))
    x = MyCustomLayer(name="double")(x)
    x = L.Dense(8, name="after")(x)
    return keras.Model(inputs, x)


def test_custom_estimator_is_used_for_its_layer_class():
    ai = AutoInit(
        custom_distribution_estimators={MyCustomLayer: MyCustomOutputDistributionEstimator},
        seed=0,
        weight_init_config={"condition_on_draw": False},  # the paper's scale, checked below
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        model, estimates = ai.initialize_model(
            custom_model().to_json(), custom_objects={"MyCustomLayer": MyCustomLayer}, return_estimates=True
        )
    double = estimates[1]
    assert double["estimator"] == "custom" and double["var"] == 4.0
    assert estimates[2]["scale"] == pytest.approx(1 / (16 * 4.0))
    measured = {r["name"]: r for r in probe(model, batch_size=2048)}
    assert measured["after"]["var"] == pytest.approx(1.0, rel=0.2)


def test_unknown_layer_warns_naming_layer_and_class_then_passes_through():
    with pytest.warns(UnsupportedLayerWarning, match=r"'double' \(MyCustomLayer\)"):
        _, estimates = AutoInit(seed=0).initialize_model(custom_model(), return_estimates=True)
    assert estimates[1]["estimator"] == "pass-through"
    assert estimates[1]["var"] == 1.0


def test_custom_estimator_must_subclass_the_base():
    ai = AutoInit(custom_distribution_estimators={MyCustomLayer: dict}, seed=0)
    with pytest.raises(AutoInitError, match="LayerOutputDistributionEstimator subclasses"):
        ai.initialize_model(custom_model())


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "config, message",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "Expected a keras.Model, a config dict or a JSON string"),
        ({"class_name": "Dense", "config": {}}, "class_name one of"),
        ({"class_name": "Functional"}, "'config' object"),
        (
            {
                "class_name": "Sequential",
                "config": {"name": "s", "layers": [{"class_name": "NoSuchLayer", "config": {}}]},
            },
            "NoSuchLayer",
        ),
        (12, "Received: int"),
    ],
)
def test_bad_configs_raise_model_config_error(config, message):
    with pytest.raises(ModelConfigError, match=message):
        AutoInit().initialize_model(config)


def test_subclassed_and_unbuilt_models_are_refused_clearly():
    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelConfigError, match="subclassed"):
        AutoInit().initialize_model(Sub())
    with pytest.raises(ModelConfigError, match="no input shape"):
        AutoInit().initialize_model(keras.Sequential([L.Dense(3)]))


# -- end to end: measured second moments at weighted layers --------------------


from band import out_of_band, weighted_ratios  # noqa: E402

ACTIVATIONS = [
    "relu",
    "tanh",
    "selu",
    "gelu",
    "swish",
    "sigmoid",
    "elu",
    "softplus",
    "mish",
    "hard_silu",
    "leaky_relu",
    "softsign",
    "hard_sigmoid",
]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_weighted_layers_keep_their_target(activation):
    ratios = weighted_ratios(mlp(activation, width=256, depth=6, input_dim=128), batch_size=1024)
    assert all(0.5 <= r <= 2.0 for r in ratios.values()), ratios


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("all_cnn_c", {"activation": "relu"}),
        ("all_cnn_c", {"activation": "selu", "dropout_rate": 0.25}),
        ("preact_resnet56", {}),
        ("preact_resnet56_nobn", {}),
        ("text_cnn", {}),
        ("text_rnn", {}),
        ("transformer_encoder", {}),
        ("codeepneat", {}),
    ],
)
def test_zoo_models_weighted_layers_keep_their_target(name, kwargs):
    from autoinit import zoo

    ratios = weighted_ratios(zoo.build(name, **kwargs), batch_size=32)
    assert ratios and not out_of_band(ratios)


@pytest.mark.parametrize(
    "rank, strides, padding, dilation",
    [
        (2, (1, 1), "same", (1, 1)),
        (2, (2, 2), "same", (1, 1)),
        (2, (1, 1), "valid", (2, 1)),
        (1, (1,), "causal", (2,)),
        (1, (3,), "same", (1,)),
        (3, (2, 1, 1), "same", (1, 1, 1)),
    ],
)
def test_convolve_map_follows_keras_convolution(rank, strides, padding, dilation):
    # The expected-value map of a conv output is the conv of the input's map.
    from autoinit.estimators.convolutional import convolve_map

    rng = np.random.default_rng(rank)
    spatial = {1: (11,), 2: (7, 9), 3: (5, 4, 6)}[rank]
    values = rng.standard_normal((*spatial, 3))
    kernel = rng.standard_normal((*([3] * rank), 3, 4))
    conv = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[rank](
        4, 3, strides=strides, padding=padding, dilation_rate=dilation, use_bias=False, dtype="float64"
    )
    conv.build((None, *spatial, 3))
    conv.kernel.assign(kernel)
    expected = keras.ops.convert_to_numpy(conv(values[None]))[0]
    assert np.allclose(convolve_map(values, kernel, strides, padding, dilation), expected, atol=1e-10)


@pytest.mark.parametrize(
    "rank, groups, strides, padding",
    [(2, 2, (1, 1), "same"), (2, 3, (2, 1), "valid"), (1, 2, (2,), "causal"), (3, 2, (1, 2, 1), "same")],
)
def test_grouped_convolve_map_follows_keras_convolution(rank, groups, strides, padding):
    from autoinit.estimators.convolutional import convolve_map

    rng = np.random.default_rng(10 + rank)
    spatial = {1: (11,), 2: (7, 9), 3: (5, 4, 6)}[rank]
    values = rng.standard_normal((*spatial, 2 * groups))
    kernel = rng.standard_normal((*([3] * rank), 2, 3 * groups))
    conv = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[rank](
        3 * groups, 3, strides=strides, padding=padding, groups=groups, use_bias=False, dtype="float64"
    )
    conv.build((None, *spatial, 2 * groups))
    conv.kernel.assign(kernel)
    expected = keras.ops.convert_to_numpy(conv(values[None]))[0]
    assert np.allclose(
        convolve_map(values, kernel, strides, padding, (1,) * rank, groups), expected, atol=1e-10
    )


@pytest.mark.parametrize(
    "rank, strides, padding, dilation",
    [
        (2, (1, 1), "same", (1, 1)),
        (2, (2, 2), "valid", (1, 1)),
        (1, (1,), "valid", (2,)),
        (1, (2,), "same", (1,)),
    ],
)
def test_depthwise_and_separable_maps_follow_keras(rank, strides, padding, dilation):
    from autoinit.estimators.convolutional import convolve_map, depthwise_as_grouped

    rng = np.random.default_rng(20 + rank)
    spatial = {1: (11,), 2: (7, 9)}[rank]
    values = rng.standard_normal((*spatial, 3))
    depthwise = rng.standard_normal((*([3] * rank), 3, 2))
    pointwise = rng.standard_normal((*([1] * rank), 6, 4))
    dw = {1: L.DepthwiseConv1D, 2: L.DepthwiseConv2D}[rank](
        3,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=2,
        use_bias=False,
        dtype="float64",
    )
    dw.build((None, *spatial, 3))
    dw.kernel.assign(depthwise)
    expected = keras.ops.convert_to_numpy(dw(values[None]))[0]
    middle = convolve_map(values, depthwise_as_grouped(depthwise), strides, padding, dilation, groups=3)
    assert np.allclose(middle, expected, atol=1e-10)
    sep = {1: L.SeparableConv1D, 2: L.SeparableConv2D}[rank](
        4,
        3,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        depth_multiplier=2,
        use_bias=False,
        dtype="float64",
    )
    sep.build((None, *spatial, 3))
    sep.depthwise_kernel.assign(depthwise)
    sep.pointwise_kernel.assign(pointwise)
    expected = keras.ops.convert_to_numpy(sep(values[None]))[0]
    ones = (1,) * rank
    assert np.allclose(convolve_map(middle, pointwise, ones, "valid", ones), expected, atol=1e-10)


@pytest.mark.parametrize(
    "rank, strides, padding, dilation, kernel_size",
    [
        (2, (2, 2), "same", (1, 1), 3),
        (2, (2, 1), "valid", (1, 1), 3),
        (1, (3,), "same", (1,), 4),
        (1, (3,), "valid", (1,), 2),
        (1, (2,), "same", (1,), 1),
        (3, (2, 1, 2), "same", (1, 1, 1), 3),
    ],
)
def test_convolve_transpose_map_follows_keras(rank, strides, padding, dilation, kernel_size):
    from autoinit.estimators.convolutional import convolve_transpose_map

    rng = np.random.default_rng(30 + rank)
    spatial = {1: (7,), 2: (5, 6), 3: (3, 4, 2)}[rank]
    values = rng.standard_normal((*spatial, 3))
    kernel = rng.standard_normal((*([kernel_size] * rank), 4, 3))
    conv = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose, 3: L.Conv3DTranspose}[rank](
        4,
        kernel_size,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=False,
        dtype="float64",
    )
    conv.build((None, *spatial, 3))
    conv.kernel.assign(kernel)
    expected = keras.ops.convert_to_numpy(conv(values[None]))[0]
    result = convolve_transpose_map(values, kernel, strides, padding, dilation)
    assert result.shape == expected.shape
    assert np.allclose(result, expected, atol=1e-10)


def test_predictions_for_the_drawn_weights_match_the_probe_layer_by_layer():
    # Without BN the residual stream carries large per-channel and per-position
    # offsets; conditioned on the drawn weights they are predicted exactly, so
    # every layer's measured variance follows its prediction (here within 25%;
    # before the fix layers drifted to 0.2x-5x depending on the seed).
    from autoinit import zoo

    model, estimates = AutoInit(seed=3).initialize_model(
        zoo.preact_resnet(20, batch_norm=False), return_estimates=True
    )
    measured = {r["name"]: r["var"] for r in probe(model, batch_size=32, seed=3)}
    ratios = {
        r["name"]: measured[r["name"]] / r["var"]
        for r in estimates
        if r["class_name"] in ("Conv2D", "ReLU", "Add", "GlobalAveragePooling2D")
    }
    assert len(ratios) > 40
    assert all(0.8 <= v <= 1.25 for v in ratios.values()), {k: round(v, 3) for k, v in ratios.items()}


def layer_zoo_model():
    """Depthwise, separable, transposed convs, concatenation and gating."""
    x = inputs = keras.Input((16, 16, 8))
    a = L.DepthwiseConv2D(3, padding="same", activation="relu", name="depthwise")(x)
    b = L.SeparableConv2D(16, 3, padding="same", activation="relu", name="separable")(x)
    c = L.Conv2DTranspose(8, 3, strides=2, padding="same", name="transposed")(x)
    c = L.MaxPooling2D(2, name="pool")(L.ReLU()(c))
    merged = L.Concatenate(name="concat")([a, b, c])
    gate = L.Conv2D(32, 1, activation="sigmoid", name="gate")(merged)
    value = L.Conv2D(32, 3, padding="same", activation="tanh", name="value")(merged)
    gated = L.Multiply(name="gated")([gate, value])
    h = L.ZeroPadding2D(1)(gated)
    h = L.Conv2D(32, 3, name="after_padding")(h)
    h = L.GlobalAveragePooling2D()(L.ReLU()(h))
    return keras.Model(inputs, L.Dense(10, name="head")(h))


GATED_PRODUCT_MISS = (
    "head at 0.29x: the gate (1x1 conv, sigmoid) and value (3x3 conv, tanh) read the same 32-channel "
    "tensor, so for one weight draw their pre-activations correlate per channel; Multiply takes them as "
    "independent, the per-channel offsets after the product are off, and the head (10 units on 32 pooled "
    "channels, offset-dominated) follows them. Seeds 1-5 give head 0.6-1.9x."
)


@pytest.mark.parametrize(
    "seed", [1, pytest.param(0, marks=pytest.mark.xfail(strict=True, reason=GATED_PRODUCT_MISS))]
)
def test_layer_families_keep_their_target(seed):
    ratios = weighted_ratios(layer_zoo_model(), seed=seed, batch_size=64)
    assert set(ratios) >= {"depthwise", "separable", "transposed", "gate", "value", "after_padding", "head"}
    assert not out_of_band(ratios)


def test_nested_models_are_initialized_inside():
    inner_in = keras.Input((32,))
    inner = keras.Model(inner_in, L.Dense(32, activation="relu", name="inner_dense")(inner_in), name="block")
    x = inputs = keras.Input((32,))
    x = inner(x)
    x = inner(x)  # shared: called twice
    model = keras.Model(inputs, L.Dense(4, name="head")(x))
    model, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    names = [r["name"] for r in estimates]
    assert "block/inner_dense" in names and "block#2/inner_dense#2" in names
    second = estimates[names.index("block#2/inner_dense#2")]
    first = estimates[names.index("block/inner_dense")]
    assert second["scale"] == first["scale"]
    # Only the first call is scaled to the target; the second reuses its weights.
    assert first["target"] == 1.0 and second["target"] is None


def test_the_pooling_trap_is_modelled():
    """ReLU -> Conv2D -> GlobalAveragePooling2D: the per-channel offset a
    fixed weight draw makes from the ReLU's mean survives the pooling."""
    x = inputs = keras.Input((16, 16, 64))
    x = L.ReLU()(x)
    x = L.Conv2D(128, 3, padding="same", name="conv")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, L.Dense(64, name="dense")(x))
    model, estimates = AutoInit(seed=0).initialize_model(model, return_estimates=True)
    measured = {r["name"]: r for r in probe(model, batch_size=128)}
    predicted_gap = next(r for r in estimates if r["name"] == "gap")["var"]
    assert predicted_gap == pytest.approx(measured["gap"]["var"], rel=0.3)
    assert predicted_gap > 0.2  # independence alone would predict ~0.004
    dense = measured["dense"]
    assert 0.5 <= dense["mean"] ** 2 + dense["var"] <= 2.0
