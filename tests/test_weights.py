"""WeightWriter: a weight redrawn at another scale from one seed (conditioning
on the draw) equals what the recorded initializer draws, bit for bit."""

from __future__ import annotations

import contextlib
import threading

import keras
import numpy as np
import pytest

from autoinit.keras_adapter.weights import WeightWriter
from autoinit.options import DISTRIBUTIONS


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("shape", [(3, 3, 8, 16), (40, 24), (7,)])
def test_rescaled_redraw_is_what_the_recorded_initializer_draws(distribution, shape):
    layer = keras.layers.Dense(4)
    variable = keras.Variable(np.zeros(shape, np.float32))
    writer = WeightWriter(distribution, seed=3)
    writer.write(layer, variable, 0.02, "5:kernel", "kernel_initializer")
    first = variable.numpy()
    writer.write(layer, variable, 0.02 * 1.37, "5:kernel", "kernel_initializer")
    redrawn = variable.numpy()
    recorded = layer.kernel_initializer
    np.testing.assert_array_equal(redrawn, keras.ops.convert_to_numpy(recorded(shape, dtype="float32")))
    fresh = WeightWriter(distribution, seed=3)
    fresh.write(layer, variable, 0.02 * 1.37, "5:kernel", None)
    np.testing.assert_array_equal(variable.numpy(), redrawn)  # no memory of the first draw
    assert not np.array_equal(first, redrawn)
    if distribution != "orthogonal" or len(shape) < 2:
        np.testing.assert_allclose(redrawn, first * np.sqrt(1.37), rtol=1e-5, atol=1e-7)


def test_another_place_or_seed_draws_anew():
    variable = keras.Variable(np.zeros((16, 16), np.float32))
    layer = keras.layers.Dense(4)
    writer = WeightWriter("truncated_normal", seed=3)
    writer.write(layer, variable, 0.1, "1:kernel", None)
    a = variable.numpy()
    writer.write(layer, variable, 0.1, "2:kernel", None)
    b = variable.numpy()
    WeightWriter("truncated_normal", seed=4).write(layer, variable, 0.1, "1:kernel", None)
    assert not np.array_equal(a, b) and not np.array_equal(a, variable.numpy())


def _mixed_model() -> keras.Model:
    """Every kernel kind the draw plan knows, a nested model called twice and a shared layer."""
    L = keras.layers
    inputs = keras.Input((12, 12, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.SeparableConv2D(8, 3, padding="same", activation="tanh")(x)
    block_in = keras.Input((12, 12, 8))
    block = keras.Model(block_in, L.Add()([block_in, L.Conv2D(8, 1)(block_in)]))
    x = block(block(x))
    x = L.Conv2DTranspose(4, 2, strides=2)(x)
    x = L.Reshape((24 * 24, 4))(x)
    x = L.MultiHeadAttention(2, 4)(x, x)
    shared = L.Dense(6, activation="relu")
    x = shared(L.Dense(6)(x))
    x = shared(x)
    return keras.Model(inputs, L.Dense(3)(L.GlobalAveragePooling1D()(x)))


def _initialized(model: keras.Model, distribution: str, ahead: bool, monkeypatch) -> list[np.ndarray]:
    from autoinit import AutoInit

    with monkeypatch.context() as patch:
        if not ahead:
            patch.setattr(WeightWriter, "drawing_ahead", lambda self, model: contextlib.nullcontext())
        AutoInit({"distribution": distribution}, seed=11).initialize_model(model)
    return [w.numpy() for w in model.weights]


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_draws_made_ahead_give_the_same_weights_bit_for_bit(distribution, monkeypatch):
    from autoinit.keras_adapter import weights

    keras.utils.set_random_seed(0)
    model = _mixed_model()
    sequential = _initialized(model, distribution, False, monkeypatch)
    threads = []
    unit_draw = weights._unit_draw
    monkeypatch.setattr(
        weights, "_unit_draw", lambda *a: threads.append(threading.current_thread().name) or unit_draw(*a)
    )
    ahead = _initialized(model, distribution, True, monkeypatch)
    assert len(ahead) == len(sequential)
    for a, b in zip(ahead, sequential):
        assert a.tobytes() == b.tobytes()
    # Every kernel's unit draw was made on the background thread (the plan foresaw them all).
    assert threads and set(threads) == {"autoinit-draw-ahead"}


def _key(n: int) -> tuple:
    return ("truncated_normal", n, (n + 1, 2), "float32")


def test_draw_ahead_hands_over_planned_draws_and_drops_skipped_ones():
    from autoinit.keras_adapter.ahead import DrawAhead

    made = []

    def draw(key):
        made.append(key[1])
        if key[1] == 3:
            raise ValueError("a draw that fails is made again by the walk")
        return f"unit {key[1]}"

    keys = [_key(n) for n in range(6)]
    with DrawAhead(keys, draw, budget=1) as drawer:  # one draw waits ahead at a time
        assert drawer.take(_key(0)) == "unit 0"
        assert drawer.take(_key(2)) == "unit 2"  # 1 skipped: dropped
        assert drawer.take(_key(1)) is None  # already passed
        assert drawer.take(_key(3)) is None  # failed
        assert drawer.take(("uniform", 4, (5, 2), "float32")) is None  # not planned
        assert drawer.take(_key(5)) == "unit 5"
    assert made == sorted(made) and 5 in made


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**31 - 3, 2**31 - 2, 2**31 - 1])
def test_unit_draws_are_keras_draws_for_every_seed_a_variable_can_get(seed):
    """The raw kernels are seeded as Keras seeds an integer (it folds it into
    int32 by ``mod 2**31 - 2``: ``variable_seed`` can reach that modulus)."""
    from autoinit.keras_adapter.weights import _unit_draw

    shape = (6, 5)
    draws = {
        "truncated_normal": keras.random.truncated_normal(shape, seed=seed),
        "untruncated_normal": keras.random.normal(shape, seed=seed),
        "uniform": keras.random.uniform(shape, seed=seed),
    }
    for kind, expected in draws.items():
        got = _unit_draw(kind, seed, shape, "float32")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected))
