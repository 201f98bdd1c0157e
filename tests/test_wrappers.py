"""Wrapper layers: TimeDistributed applies its layer's estimator to every time step."""

from __future__ import annotations

import warnings

import keras
import pytest
from band import out_of_band, weighted_ratios

from autoinit import AutoInit


def time_distributed_model() -> keras.Model:
    inputs = keras.Input((6, 16, 16, 3), name="clip")
    x = keras.layers.TimeDistributed(
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"), name="frame_conv"
    )(inputs)
    x = keras.layers.TimeDistributed(keras.layers.GlobalAveragePooling2D(), name="frame_pool")(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(32, activation="tanh"), name="frame_dense")(x)
    outputs = keras.layers.Dense(4, name="head")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(inputs, outputs, name="clips")


def test_time_distributed_layers_are_initialized_and_keep_their_target():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pass-through warning
        ratios = weighted_ratios(time_distributed_model(), batch_size=64)
    assert set(ratios) == {"frame_conv", "frame_dense", "head"}
    assert not out_of_band(ratios), out_of_band(ratios)


def test_time_distributed_initializers_are_in_the_initialized_config():
    config = AutoInit(seed=3).initialized_config(time_distributed_model())
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    inner = layers["frame_conv"]["config"]["layer"]["config"]["kernel_initializer"]
    assert inner["class_name"] == "VarianceScaling" and inner["config"]["seed"] is not None
    rebuilt = keras.saving.deserialize_keras_object(config)
    original = AutoInit(seed=3).initialize_model(time_distributed_model())
    assert rebuilt.get_layer("frame_conv").get_weights()[0] == pytest.approx(
        original.get_layer("frame_conv").get_weights()[0]
    )
