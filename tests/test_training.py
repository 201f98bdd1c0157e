"""train_probe: short training runs per initialization (the paper's Figure 4 question)."""

from __future__ import annotations

import io
import math

import keras
import numpy as np
import pytest

from autoinit.errors import AutoInitError, TrainingDataError
from autoinit.training import load_training_data, train_probe


def small_mlp(stddev: float | None = None, depth: int = 3, classes: int | None = None) -> keras.Model:
    init = keras.initializers.RandomNormal(stddev=stddev) if stddev else "glorot_uniform"
    layers = [keras.Input((16,))]
    layers += [keras.layers.Dense(32, kernel_initializer=init) for _ in range(depth)]
    layers += [
        keras.layers.Dense(classes or 4, kernel_initializer=init, activation="softmax" if classes else None)
    ]
    return keras.Sequential(layers, name="small_mlp")


def test_one_curve_per_initialization_with_one_value_per_step():
    run = train_probe(small_mlp(), steps=6, batch_size=16, baselines=("default", "he_normal"))
    assert run["task"] == "teacher" and run["synthetic"] is True
    assert (run["steps"], run["batch_size"]) == (6, 16)
    assert run["optimizer"] == {"name": "SGD", "learning_rate": 0.01, "momentum": 0.9}
    assert run["loss"] == ["mean_squared_error"]
    assert list(run["series"]) == ["default", "he_normal", "autoinit"]
    for series in run["series"].values():
        assert len(series["loss"]) == len(series["grad_norm"]) == 6
        assert series["diverged_at"] is None
        assert all(value > 0 and math.isfinite(value) for value in series["loss"] + series["grad_norm"])


def test_the_same_seed_gives_the_same_curves_and_another_seed_others():
    first = train_probe(small_mlp(), steps=5, batch_size=16, seed=3)
    again = train_probe(small_mlp(), steps=5, batch_size=16, seed=3)
    other = train_probe(small_mlp(), steps=5, batch_size=16, seed=4)
    assert first == again
    assert first["series"]["autoinit"]["loss"] != other["series"]["autoinit"]["loss"]


def test_a_softmax_head_learns_the_teachers_argmax_with_cross_entropy():
    run = train_probe(small_mlp(classes=5), steps=4, batch_size=32, baselines=())
    assert run["loss"] == ["sparse_categorical_crossentropy"]
    # An initialization that keeps outputs near unit scale starts near chance, log K.
    assert abs(run["series"]["autoinit"]["loss"][0] - math.log(5)) < 0.5


def test_an_exploding_default_is_reported_diverged_at_its_first_step():
    # 12 layers with weights N(0, 8^2) at width 32: outputs near 1e19, squared errors
    # past float32's range, so the very first loss is infinite.
    run = train_probe(small_mlp(stddev=8.0, depth=12), steps=5, batch_size=16)
    default, autoinit = run["series"]["default"], run["series"]["autoinit"]
    assert default["diverged_at"] == 0
    assert default["loss"] == [None] * 5 and default["grad_norm"][1:] == [None] * 4
    assert autoinit["diverged_at"] is None and None not in autoinit["loss"]


def test_divergence_mid_run_is_reported_at_the_first_non_finite_step():
    run = train_probe(small_mlp(), steps=40, batch_size=16, learning_rate=30.0, baselines=())
    series = run["series"]["autoinit"]
    step = series["diverged_at"]
    assert step is not None and step > 0, series
    assert all(value is not None for value in series["loss"][:step])
    assert series["loss"][step] is None or series["grad_norm"][step] is None
    assert series["loss"][step + 1 :] == [None] * (40 - step - 1)


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_real_data_from_an_npz_trains_every_initialization():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 16)).astype("float32")
    y = rng.integers(0, 5, size=50)
    data = load_training_data(_npz(x=x, y=y))
    run = train_probe(small_mlp(classes=5), steps=5, batch_size=16, task="data", data=data)
    assert run["task"] == "data" and run["synthetic"] is False
    assert all(len(s["loss"]) == 5 and None not in s["loss"] for s in run["series"].values())


def test_an_npz_holding_pickles_is_refused_without_unpickling():
    pickled = _npz(x=np.array([{"a": 1}, {"b": 2}], dtype=object), y=np.zeros(2))
    with pytest.raises(TrainingDataError, match="unpickling"):
        load_training_data(pickled)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 16))}, "Missing: \\['y'\\]"),
        ({"x": np.zeros((4, 16)), "y": np.zeros(3)}, "same number of examples"),
        ({"x": np.array(["a", "b"]), "y": np.zeros(2)}, "must be numeric"),
    ],
)
def test_malformed_npz_archives_are_refused_with_the_reason(arrays, message):
    with pytest.raises(TrainingDataError, match=message):
        load_training_data(_npz(**arrays))


def test_an_upload_over_the_size_limit_is_refused():
    with pytest.raises(TrainingDataError, match="limit"):
        load_training_data(_npz(x=np.zeros((10, 16)), y=np.zeros(10)), max_bytes=100)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.zeros((8, 15)), np.zeros(8, dtype="int64"), "'x' must have shape \\(N, 16\\)"),
        (np.zeros((8, 16)), np.zeros((8, 3)), "must have shape \\(N, 5\\)"),
        (np.zeros((8, 16)), np.full(8, 7), "Labels must lie in \\[0, 5\\)"),
    ],
)
def test_data_that_does_not_fit_the_model_is_refused_naming_the_shapes(x, y, message):
    with pytest.raises(TrainingDataError, match=message):
        train_probe(small_mlp(classes=5), steps=2, task="data", data=(x, y))


def test_unknown_tasks_and_baselines_are_refused():
    with pytest.raises(AutoInitError, match="Unknown task"):
        train_probe(small_mlp(), steps=1, task="imagenet")
    with pytest.raises(AutoInitError, match="Unknown baselines"):
        train_probe(small_mlp(), steps=1, baselines=("xavier",))


def test_a_keras_hub_backbone_with_inputs_by_name_trains():
    """keras_hub backbones take their inputs as a dict by name
    (token_ids, padding_mask, ...), not as a list."""
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=200,
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=32,
    )
    run = train_probe(keras.saving.serialize_keras_object(backbone), steps=2, batch_size=4, seed=0)
    assert run["loss"] == ["mean_squared_error", "mean_squared_error"]  # sequence and pooled outputs
    for series in run["series"].values():
        assert len(series["loss"]) == 2 and series["diverged_at"] is None
        assert all(value > 0 and math.isfinite(value) for value in series["loss"])
