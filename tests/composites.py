"""Composite layers and a subclassed model in plain Keras (no keras_hub),
shared by tests/test_composite.py and the backend check (tests/backend_check.py)."""

from __future__ import annotations

import keras

L = keras.layers


class ResidualBlock(L.Layer):
    """A pre-norm residual MLP block written as a layer with sublayers."""

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.norm = L.LayerNormalization(name="norm")
        self.up = L.Dense(units * 2, activation="gelu", name="up")
        self.down = L.Dense(units, name="down")

    def call(self, x):
        return x + self.down(self.up(self.norm(x)))


class Gated(L.Layer):
    """A block that multiplies two projections of its input (keras.ops inside)."""

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gate = L.Dense(units, name="gate")
        self.value = L.Dense(units, name="value")

    def call(self, x):
        return keras.ops.sigmoid(self.gate(x)) * self.value(x)


class Net(keras.Model):
    """A subclassed model: no layer graph until its call is traced."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = L.Dense(48, name="stem")
        self.blocks = [ResidualBlock(48, name=f"block_{i}") for i in range(3)]
        self.gated = Gated(48, name="gated")
        self.head = L.Dense(10, name="head")

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.gated(x))


def functional_with_blocks() -> keras.Model:
    x = keras.Input((16, 32))
    h = L.Dense(48)(x)
    for i in range(3):
        h = ResidualBlock(48, name=f"block_{i}")(h)
    return keras.Model(x, L.Dense(10)(Gated(48, name="gated")(h)))
