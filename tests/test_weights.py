"""WeightWriter: a weight redrawn at another scale from one seed (conditioning
on the draw) equals what the recorded initializer draws, bit for bit."""

from __future__ import annotations

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
