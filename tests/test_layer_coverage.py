"""Layers people write, each in a real Keras model measured by the probe
(training mode): preprocessing and augmentation, functional op nodes
(``x + y``, ``keras.ops.relu``), SpectralNormalization, the ConvLSTM family.

For each: no pass-through warning, AutoInit's prediction for the layer's
output matches the measurement, and every weighted layer downstream lands in
the band."""

from __future__ import annotations

import warnings

import keras
import pytest
from band import expected_second_moment, out_of_band, weighted_ratios
from keras import layers as L
from keras import ops

from autoinit import AutoInit
from autoinit.errors import UnsupportedLayerWarning
from autoinit.probe import probe


def _second(record: dict) -> float:
    return record["mean"] ** 2 + record["var"]


def _predicted_and_measured(model: keras.Model, seed: int = 1) -> tuple[dict, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        model, estimates = AutoInit(seed=seed).initialize_model(model, return_estimates=True)
    measured = {r["name"]: r for r in probe(model, batch_size=64, seed=seed)}
    return {r["name"]: r for r in estimates}, measured


def _measured_directly(model: keras.Model, seed: int = 1) -> dict:
    """``{name: {"mean", "var"}}`` of every operation's output on N(0, 1)
    inputs in training mode, read from the model's own graph (op nodes have
    no ``training`` argument, which ``autoinit.probe`` passes to every call)."""
    operations = [op for op in model.operations if not isinstance(op, keras.layers.InputLayer)]
    tensors = [op._inbound_nodes[0].output_tensors[0] for op in operations]
    taps = keras.Model(model.inputs, tensors)
    x = keras.random.normal((512, *model.inputs[0].shape[1:]), seed=seed)
    values = taps(x, training=True)
    return {
        op.name: {"mean": float(ops.mean(v)), "var": float(ops.var(v))} for op, v in zip(operations, values)
    }


def _image_model(layer: keras.layers.Layer, shape: tuple = (24, 24, 3)) -> keras.Model:
    inputs = keras.Input(shape)
    x = layer(inputs)
    x = L.Conv2D(16, 3, padding="same", activation="relu", name="conv")(x)
    return keras.Model(inputs, L.Conv2D(16, 3, padding="same", name="conv2")(x))


IMAGENET_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
IMAGENET_VARIANCE = [(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2]

PREPROCESSING = {
    "normalization_from_config": lambda: L.Normalization(mean=IMAGENET_MEAN, variance=IMAGENET_VARIANCE),
    "normalization_inverted": lambda: L.Normalization(
        mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.25], invert=True
    ),
    "rescaling_per_channel": lambda: L.Rescaling([2.0, 0.5, 1.0], offset=[1.0, 0.0, -1.0]),
    "center_crop": lambda: L.CenterCrop(16, 16),
    "resizing_down": lambda: L.Resizing(12, 12),
    "resizing_up": lambda: L.Resizing(40, 40),
    "resizing_nearest": lambda: L.Resizing(16, 16, interpolation="nearest"),
    "random_flip": lambda: L.RandomFlip(),
    "random_crop": lambda: L.RandomCrop(16, 16),
    "random_rotation": lambda: L.RandomRotation(0.1),
    "random_zoom": lambda: L.RandomZoom(0.2),
    "random_translation": lambda: L.RandomTranslation(0.1, 0.1),
    "random_contrast": lambda: L.RandomContrast(0.3),
    "random_brightness": lambda: L.RandomBrightness(0.2),
}


@pytest.mark.parametrize("kind", sorted(PREPROCESSING))
def test_preprocessing_layers_are_modelled_in_training_mode(kind):
    layer = PREPROCESSING[kind]()
    predicted, measured = _predicted_and_measured(_image_model(layer))
    assert _second(predicted[layer.name]) == pytest.approx(_second(measured[layer.name]), rel=0.2)
    assert predicted[layer.name]["mean"] == pytest.approx(measured[layer.name]["mean"], abs=0.05, rel=0.05)
    ratios = weighted_ratios(_image_model(PREPROCESSING[kind]()), seed=1)
    assert set(ratios) == {"conv", "conv2"} and not out_of_band(ratios), ratios


def test_adapted_normalization_uses_its_adapted_statistics():
    layer = L.Normalization()
    layer.adapt(keras.random.normal((64, 24, 24, 3), mean=5.0, stddev=3.0, seed=0))
    predicted, measured = _predicted_and_measured(_image_model(layer))
    # N(0, 1) probe input through (x - 5) / 3: mean -5/3, variance 1/9.
    assert predicted[layer.name]["mean"] == pytest.approx(-5.0 / 3.0, rel=0.05)
    assert predicted[layer.name]["var"] == pytest.approx(measured[layer.name]["var"], rel=0.1)


def _op_model() -> keras.Model:
    """MobileNetV3's hard-swish and squeeze-excite, a residual ``x + y`` and
    scalar arithmetic, all written as functional ops."""
    inputs = keras.Input((12, 12, 16))
    a = L.Conv2D(32, 3, padding="same", name="expand")(inputs)
    hard_sigmoid = ops.relu6(a + 3.0) * (1.0 / 6.0)
    x = a * hard_sigmoid  # hard-swish: two functions of one tensor
    gate = L.GlobalAveragePooling2D(keepdims=True)(x)
    gate = L.Conv2D(32, 1, activation="sigmoid", name="squeeze")(gate)
    x = ops.multiply(x, gate)
    x = L.Conv2D(16, 3, padding="same", name="project")(x)
    x = x + inputs
    x = ops.gelu(x / 2.0 - 0.5)
    x = ops.add(x, ops.negative(ops.sigmoid(x)))
    return keras.Model(inputs, L.Conv2D(16, 3, padding="same", name="head")(x))


def test_functional_op_nodes_are_modelled():
    model = _op_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        model, estimates = AutoInit(seed=1).initialize_model(model, return_estimates=True)
    predicted = {r["name"]: r for r in estimates}
    measured = _measured_directly(model)
    ops_seen = {r["class_name"] for r in predicted.values()}
    assert {"Add", "Multiply", "Relu6", "Subtract", "TrueDivide", "Gelu", "Negative", "Sigmoid"} <= ops_seen
    # hard-swish, the second Multiply node (op names follow Keras' process-wide counter)
    hard_swish = [r["name"] for r in estimates if r["class_name"] == "Multiply"][1]
    assert _second(predicted[hard_swish]) == pytest.approx(_second(measured[hard_swish]), rel=0.05)
    for name in ("expand", "squeeze", "project", "head"):
        ratio = _second(measured[name]) / expected_second_moment(predicted[name])
        assert 0.5 <= ratio <= 2.0, (name, ratio)


def test_two_functions_of_one_tensor_are_not_independent():
    """``x * sigmoid(x)`` is swish: independence would predict mean 0."""
    inputs = keras.Input((64,))
    z = L.Dense(64, name="dense")(inputs)
    swish = L.Multiply(name="swish")([z, L.Activation("sigmoid")(z)])
    doubled = ops.add(z, z)
    model = keras.Model(inputs, [swish, doubled])
    model, estimates = AutoInit(seed=1).initialize_model(model, return_estimates=True)
    predicted = {r["name"]: r for r in estimates}
    measured = _measured_directly(model)
    assert predicted["swish"]["mean"] == pytest.approx(measured["swish"]["mean"], rel=0.1)
    assert predicted["swish"]["mean"] > 0.2
    add = next(name for name, r in predicted.items() if r["class_name"] == "Add")
    assert predicted[add]["var"] == pytest.approx(4.0 * predicted["dense"]["var"], rel=1e-3)
    assert predicted[add]["var"] == pytest.approx(measured[add]["var"], rel=0.1)


def test_a_quotient_of_two_tensors_names_the_op_node():
    inputs = keras.Input((8,))
    a = L.Dense(8, name="a")(inputs)
    model = keras.Model(inputs, a / L.Dense(8, name="b")(inputs))
    with pytest.raises(Exception, match=r"true_divide.*TrueDivide.*constant divisor"):
        AutoInit(seed=0).initialize_model(model)


def test_spectral_normalization_is_estimated_with_its_normalized_kernel_and_flagged():
    def build() -> keras.Model:
        inputs = keras.Input((12, 12, 8))
        x = L.Conv2D(16, 3, padding="same", activation="relu", name="before")(inputs)
        x = L.SpectralNormalization(L.Conv2D(32, 3, padding="same", activation="relu"), name="sn_conv")(x)
        x = L.Conv2D(16, 3, padding="same", name="after")(x)
        x = L.SpectralNormalization(L.Dense(32), name="sn_dense")(L.Flatten()(x))
        return keras.Model(inputs, L.Dense(8, name="head")(x))

    with pytest.warns(
        UnsupportedLayerWarning, match=r"cannot set the scale of layer 'sn_conv' \(SpectralNormalization\)"
    ):
        model, estimates = AutoInit(seed=1).initialize_model(build(), return_estimates=True)
    predicted = {r["name"]: r for r in estimates}
    measured = {r["name"]: r for r in probe(model, batch_size=64, seed=1)}
    for name in ("sn_conv", "sn_dense"):
        assert predicted[name]["target"] is None  # not scaled by AutoInit
        assert _second(predicted[name]) == pytest.approx(_second(measured[name]), rel=0.1)
    with pytest.warns(UnsupportedLayerWarning):
        ratios = weighted_ratios(build(), seed=1)
    assert set(ratios) == {"before", "after", "head"} and not out_of_band(ratios), ratios


def _conv_lstm_model(rank: int, return_sequences: bool) -> keras.Model:
    shape = {1: (6, 16, 8), 2: (6, 12, 12, 8), 3: (4, 6, 6, 6, 4)}[rank]
    recurrent = {1: L.ConvLSTM1D, 2: L.ConvLSTM2D, 3: L.ConvLSTM3D}[rank]
    conv = {1: L.Conv1D, 2: L.Conv2D, 3: L.Conv3D}[rank]
    inputs = keras.Input(shape)
    x = recurrent(16, 3, padding="same", return_sequences=return_sequences, name="conv_lstm")(inputs)
    after = conv(16, 3, padding="same", name="after")
    x = L.TimeDistributed(after, name="after_steps")(x) if return_sequences else after(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("rank, return_sequences", [(1, False), (2, True), (3, False)])
def test_conv_lstm_is_simulated_like_an_lstm_with_convolutions(rank, return_sequences):
    predicted, measured = _predicted_and_measured(_conv_lstm_model(rank, return_sequences))
    assert predicted["conv_lstm"]["weight_variances"]["kernel"] > 0
    assert _second(predicted["conv_lstm"]) == pytest.approx(_second(measured["conv_lstm"]), rel=0.2)
    ratios = weighted_ratios(_conv_lstm_model(rank, return_sequences), seed=1)
    assert len(ratios) == 1 and not out_of_band(ratios), ratios


# -- accepted on upload: config -> upload validator -> AutoInit -----------------

import json  # noqa: E402

from autoinit.upload import validate_model_config  # noqa: E402


def _sequence_model(layer: keras.layers.Layer) -> keras.Model:
    inputs = keras.Input((10, 16))
    x = L.Dense(16, name="before")(inputs)
    return keras.Model(inputs, L.Dense(8, name="after")(layer(x)))


def _spectral_model() -> keras.Model:
    inputs = keras.Input((16,))
    return keras.Model(inputs, L.SpectralNormalization(L.Dense(8))(inputs))


ONCE_REFUSED = {  # issue 12: refused on upload, though (now) modelled
    "masking": lambda: _sequence_model(L.Masking()),
    "rms_normalization": lambda: _sequence_model(L.RMSNormalization()),
    "activity_regularization": lambda: _sequence_model(L.ActivityRegularization(l1=0.01)),
    "spectral_normalization": _spectral_model,
    "op_nodes": _op_model,
    **{f"conv_lstm_{rank}d": (lambda rank=rank: _conv_lstm_model(rank, False)) for rank in (1, 2, 3)},
    **{kind: (lambda kind=kind: _image_model(PREPROCESSING[kind]())) for kind in PREPROCESSING},
}


@pytest.mark.parametrize("kind", sorted(ONCE_REFUSED))
def test_what_autoinit_models_is_accepted_on_upload(kind):
    config = json.loads(ONCE_REFUSED[kind]().to_json())
    validate_model_config(config)  # raises UnsafeConfigError when refused
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsupportedLayerWarning)
        estimates = AutoInit(seed=0).initialize_model(config, return_estimates=True)[1]
    assert all(r["estimator"] == "builtin" for r in estimates), [
        r["name"] for r in estimates if r["estimator"] != "builtin"
    ]
    unexpected = [
        str(w.message)
        for w in caught
        if issubclass(w.category, UnsupportedLayerWarning) and "SpectralNormalization" not in str(w.message)
    ]
    assert not unexpected, unexpected
