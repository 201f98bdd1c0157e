"""The real-world corpus: models nobody here tuned AutoInit for.

``keras.applications`` architectures (``weights=None``, nothing downloaded)
at small inputs, and evolved CoDeepNEAT-style networks: modules (nested
models) shared across several calls, branches merged by add, concatenate and
multiply, modules running on small maps. Shared by ``tests/test_real_models.py``
(a subset) and ``benchmarks/bench_real_models.py`` (all of it, seeds 1..5).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers as L

APPLICATIONS = {  # name -> input side (the smallest each accepts comfortably)
    "ResNet50": 64, "ResNet50V2": 64, "MobileNetV2": 64, "MobileNetV3Small": 64,
    "EfficientNetB0": 64, "EfficientNetV2B0": 64, "ConvNeXtTiny": 64, "DenseNet121": 64,
    "InceptionV3": 96, "Xception": 96, "NASNetMobile": 96, "VGG16": 64,
}  # fmt: skip


def application(name: str) -> keras.Model:
    side = APPLICATIONS[name]
    return getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3), classes=10)


def _module(shape: tuple, width: int, kind: str, name: str) -> keras.Model:
    """One evolved module: a small graph with its own merge."""
    inputs = keras.Input(shape)
    if kind == "residual":
        x = L.Conv2D(width, 3, padding="same", activation="relu")(inputs)
        x = L.Conv2D(shape[-1], 3, padding="same")(x)
        out = L.Activation("relu")(L.Add()([x, inputs]))
    elif kind == "inception":
        a = L.Conv2D(width, 1, activation="elu")(inputs)
        b = L.Conv2D(width, 3, padding="same", activation="selu")(inputs)
        c = L.MaxPooling2D(3, strides=1, padding="same")(inputs)
        out = L.Concatenate()([a, b, c])
    elif kind == "gated":
        gate = L.Conv2D(shape[-1], 1, activation="sigmoid")(inputs)
        value = L.Conv2D(shape[-1], 3, padding="same", activation="tanh")(inputs)
        out = L.Add()([inputs, L.Multiply()([gate, value])])
    else:
        raise ValueError(f"Unknown module kind {kind!r}")
    return keras.Model(inputs, out, name=name)


def evolved_small_maps() -> keras.Model:
    """Modules on 14x14x32, 7x7x94 and 3x3x40 maps; each module called twice."""
    inputs = keras.Input((28, 28, 3))
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="stem")(inputs)  # 14x14x32
    residual = _module(tuple(x.shape[1:]), 32, "residual", "residual_module")
    x = residual(residual(x))
    x = L.Conv2D(62, 3, strides=2, padding="same", activation="relu", name="down_1")(x)  # 7x7x62
    inception = _module(tuple(x.shape[1:]), 16, "inception", "inception_module")
    x = inception(x)  # 7x7x94
    x = L.Conv2D(40, 3, strides=2, name="down_2")(x)  # 3x3x40
    gated = _module(tuple(x.shape[1:]), 40, "gated", "gated_module")
    x = gated(gated(x))
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(10, name="head")(x), name="evolved_small_maps")


def evolved_branches() -> keras.Model:
    """Two branches from one stem, merged by concatenate and multiply, batch
    normalization and dropout between, a module shared across both branches."""
    inputs = keras.Input((32, 32, 3))
    stem = L.Conv2D(24, 3, padding="same", activation="relu", name="stem")(inputs)
    stem = L.MaxPooling2D(2)(stem)  # 16x16x24
    shared = _module(tuple(stem.shape[1:]), 24, "residual", "shared_module")
    left = shared(L.Conv2D(24, 1, activation="relu", name="left_in")(stem))
    right = shared(L.BatchNormalization()(L.Conv2D(24, 3, padding="same", name="right_in")(stem)))
    merged = L.Concatenate()([left, right])
    merged = L.Dropout(0.2)(merged)
    gate = L.Conv2D(48, 1, activation="sigmoid", name="gate")(merged)
    x = L.Multiply()([merged, gate])
    x = L.SeparableConv2D(64, 3, strides=2, padding="same", activation="swish", name="separable")(x)  # 8x8x64
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2D(64, 3, padding="same", activation="gelu", name="late_conv")(x)  # 4x4x64
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(64, activation="relu", name="hidden")(x)
    return keras.Model(inputs, L.Dense(10, name="head")(x), name="evolved_branches")


def evolved_wide_shallow() -> keras.Model:
    """An evolved net with inception-style modules on 8x8 maps, called three times."""
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(48, 3, padding="same", activation="relu", name="stem")(inputs)
    x = L.MaxPooling2D(2)(x)  # 8x8x48
    module = _module(tuple(x.shape[1:]), 48, "residual", "repeated_module")
    for _ in range(3):
        x = module(x)
    x = L.Conv2D(32, 1, activation="relu", name="squeeze")(x)
    inception = _module(tuple(x.shape[1:]), 24, "inception", "inception_module")
    x = inception(x)  # 8x8x80
    x = L.GlobalMaxPooling2D()(x)
    return keras.Model(inputs, L.Dense(10, name="head")(x), name="evolved_wide_shallow")


EVOLVED: dict[str, Callable[[], keras.Model]] = {
    "evolved_small_maps": evolved_small_maps,
    "evolved_branches": evolved_branches,
    "evolved_wide_shallow": evolved_wide_shallow,
}

CORPUS: dict[str, Callable[[], keras.Model]] = {
    **{name: (lambda name=name: application(name)) for name in APPLICATIONS},
    **EVOLVED,
}
"""Every model of the corpus, by name: a builder returning a fresh model."""
