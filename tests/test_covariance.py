"""Covariance of the random parts on small tensors once weights are drawn
(``SignalMoments.covariance``): every step against a simulation, and the
end-to-end effect on a narrow convolution chain against a Gaussian probe."""

from __future__ import annotations

import numpy as np
import pytest

from autoinit.estimators.activations import ACTIVATIONS
from autoinit.estimators.convolutional import conv_pair_covariance, convolve_map, estimate_conv_realised
from autoinit.estimators.covariance import (
    activation_covariance,
    linear_covariance,
    linear_variances,
    spatial_dropout_covariance,
)
from autoinit.estimators.pooling import average_pooling_map, clark_maximum, estimate_max_pooling_map
from autoinit.moments import SignalMoments

RNG = np.random.default_rng(0)


def random_covariance(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(n, n)) / np.sqrt(n)
    return a @ a.T + 0.1 * np.eye(n)


def samples(mean: np.ndarray, covariance: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multivariate_normal(mean.ravel(), covariance, size=count).reshape(count, *mean.shape)


def test_a_convolution_of_correlated_inputs_matches_the_simulated_covariance():
    rng = np.random.default_rng(1)
    shape = (5, 5, 2)
    c = random_covariance(50, rng)
    kernel = rng.normal(size=(3, 3, 2, 3))
    apply = lambda b: convolve_map(b, kernel, (1, 1), "same", (1, 1))  # noqa: E731
    predicted = linear_covariance(apply, c, shape)
    x = samples(np.zeros(shape), c, 40000, rng)
    y = apply(x).reshape(len(x), -1)
    simulated = np.cov(y, rowvar=False)
    assert np.abs(predicted - simulated).max() < 0.05 * np.abs(simulated).max()
    np.testing.assert_allclose(linear_variances(apply, c, shape), np.diag(predicted), rtol=1e-10)
    # The independent sum misses the cross terms by far on this draw.
    independent = convolve_map(
        np.broadcast_to(np.diag(c).reshape(shape), shape), kernel**2, (1, 1), "same", (1, 1)
    )
    assert np.abs(independent.ravel() / np.diag(simulated) - 1).max() > 0.2


@pytest.mark.parametrize(
    ("kernel_size", "strides", "padding", "dilation", "groups", "varying"),
    [
        ((3, 3), (1, 1), "same", (1, 1), 1, True),
        ((3, 2), (2, 1), "valid", (1, 2), 2, True),
        ((5, 5), (1, 1), "same", (1, 1), 4, False),
        ((3,), (1,), "causal", (2,), 1, True),
        ((2, 2, 2), (1, 2, 1), "same", (1, 1, 1), 1, False),
    ],
)
def test_the_pair_covariance_is_the_mean_covariance_of_distinct_output_positions(
    kernel_size, strides, padding, dilation, groups, varying
):
    """Against the full linear map: ``A_o diag(r) A_o^T`` per output channel,
    its off-diagonal entries averaged (the tap-space sum must equal it)."""
    rng = np.random.default_rng(7)
    spatial = (5, 4, 3)[: len(kernel_size)]
    channels = 4
    kernel = rng.normal(size=(*kernel_size, channels // groups, 8))
    r = rng.uniform(0.2, 2.0, size=(*spatial, channels) if varying else (channels,))
    n = int(np.prod(spatial)) * channels
    columns = convolve_map(
        np.eye(n).reshape(n, *spatial, channels), kernel, strides, padding, dilation, groups
    )
    a = columns.reshape(n, -1, kernel.shape[-1])  # (input element, output position, output channel)
    weights = np.broadcast_to(r, (*spatial, channels)).reshape(n)
    positions = a.shape[1]
    expected = np.mean(
        [
            (np.sum(cov) - np.trace(cov)) / (positions * (positions - 1))
            for cov in (a[:, :, o].T @ (weights[:, None] * a[:, :, o]) for o in range(a.shape[2]))
        ]
    )
    got = conv_pair_covariance(kernel, r, spatial, strides, padding, dilation, groups)
    assert abs(expected) > 1e-3
    assert got == pytest.approx(expected, rel=1e-9)


def test_the_realised_convolution_uses_the_input_covariance():
    rng = np.random.default_rng(2)
    shape = (4, 4, 2)
    c = random_covariance(32, rng)
    offsets = rng.normal(size=shape)
    x = SignalMoments.from_offsets(offsets, np.diag(c).reshape(shape)).with_covariance(c)
    kernel = rng.normal(size=(3, 3, 2, 2))
    z = estimate_conv_realised(kernel, x, offsets, (1, 1), "same", (1, 1))
    draws = samples(offsets, c, 40000, rng)
    y = convolve_map(draws, kernel, (1, 1), "same", (1, 1))
    assert z.covariance is not None
    assert z.mean == pytest.approx(y.mean(), abs=0.03)
    assert z.var == pytest.approx(y.var(), rel=0.03)


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu"])
def test_an_activation_of_correlated_gaussians_matches_the_simulated_covariance(name):
    rng = np.random.default_rng(3)
    c = random_covariance(6, rng)
    d = rng.normal(size=6) * 0.5
    fn = ACTIVATIONS[name].fn
    predicted = activation_covariance(fn, d, np.diag(c), c)
    y = fn(samples(d, c, 200000, rng))
    simulated = np.cov(y, rowvar=False)
    off = ~np.eye(6, dtype=bool)
    assert np.abs(predicted[off] - simulated[off]).max() < 0.01


def test_spatial_dropout_scales_only_pairs_within_a_channel():
    rng = np.random.default_rng(4)
    shape, rate = (3, 2), 0.3
    c = random_covariance(6, rng)
    d = rng.normal(size=shape)
    x = samples(d, c, 400000, rng)
    mask = (rng.random(size=(len(x), 1, 2)) > rate) / (1 - rate)
    simulated = np.cov((x * mask).reshape(len(x), -1), rowvar=False)
    predicted = spatial_dropout_covariance(c, d, rate)
    off = ~np.eye(6, dtype=bool)
    assert np.abs(predicted[off] - simulated[off]).max() < 0.03


def test_clark_recursion_with_correlated_and_unequal_elements_matches_simulation():
    rng = np.random.default_rng(5)
    # Neighbouring outputs of one smooth kernel: positively correlated.
    std = np.array([1.0, 0.8, 1.2, 0.9])
    c = np.outer(std, std) * (0.6 + 0.4 * np.eye(4))
    mu = np.array([0.3, -0.2, 0.5, 0.0])
    mean, var = clark_maximum(mu[None], c[None])
    m = samples(mu, c, 400000, rng).max(axis=1)
    # Clark's recursion treats each running maximum as Gaussian: a few percent.
    assert mean[0] == pytest.approx(m.mean(), rel=0.03)
    assert var[0] == pytest.approx(m.var(), rel=0.06)
    # Taking the elements as independent is much further off.
    independent_mean, _ = clark_maximum(mu[None], np.diag(np.diag(c))[None])
    assert abs(independent_mean[0] - m.mean()) > 3 * abs(mean[0] - m.mean())


def test_a_missing_window_element_never_wins():
    mean, var = clark_maximum(np.array([[1.0, -np.inf]]), np.array([[[2.0, 0.0], [0.0, 0.0]]]))
    assert (mean[0], var[0]) == (1.0, 2.0)


def test_max_pooling_of_a_map_takes_each_window_with_its_own_expected_values():
    rng = np.random.default_rng(6)
    offsets = np.zeros((4, 4, 1))
    offsets[::2, ::2] = 2.0  # one element of every 2x2 window stands out
    x = SignalMoments.from_offsets(offsets, 0.25)
    y = estimate_max_pooling_map(x, (2, 2), (2, 2), "valid")
    draws = offsets + 0.5 * rng.normal(size=(200000, 4, 4, 1))
    pooled = draws.reshape(-1, 2, 2, 2, 2, 1).max(axis=(2, 4))
    assert y.mean == pytest.approx(pooled.mean(), abs=0.01)
    assert y.var == pytest.approx(pooled.var(), rel=0.05)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_average_pooling_of_a_map_matches_keras(padding):
    import keras

    values = RNG.normal(size=(2, 5, 5, 3)).astype("float32")
    layer = keras.layers.AveragePooling2D(2, strides=2, padding=padding)
    np.testing.assert_allclose(
        average_pooling_map(values.astype(np.float64), (2, 2), (2, 2), padding),
        layer(values).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_narrow_chain_of_shared_convolutions_is_predicted_as_measured():
    """A 4-channel module called three times (its later calls cannot be
    rescaled): with the covariance the predicted variance at the end follows
    the probe, where independent sums drift far from it."""
    import keras

    from autoinit import AutoInit
    from autoinit.probe import probe

    inputs = keras.Input((8, 8, 4), name="image")
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="shared")
    x = conv(conv(conv(inputs)))
    outputs = keras.layers.Conv2D(4, 3, padding="same", name="last")(x)
    model = keras.Model(inputs, outputs)
    ratios = []
    for seed in range(3):
        initialized, estimates = AutoInit(seed=seed).initialize_model(model, return_estimates=True)
        measured = {r["name"]: r for r in probe(initialized, batch_size=512, seed=seed)}
        predicted = {r["name"]: r for r in estimates}
        for name in ("shared#3", "last"):
            ratios.append(measured[name]["var"] / predicted[name]["var"])
    assert max(abs(np.log10(r)) for r in ratios) < np.log10(1.25), ratios


def test_a_linear_map_beyond_the_budget_falls_back_to_independent_sums():
    from autoinit.estimators.core import estimate_dense_realised
    from autoinit.estimators.covariance import LINEAR_BUDGET

    rng = np.random.default_rng(7)
    n = 1024
    offsets = np.zeros(n)
    x = SignalMoments.from_offsets(offsets, 1.0).with_covariance(np.eye(n))
    assert x.covariance is not None
    wide = rng.normal(size=(n, LINEAR_BUDGET // n + 1)) / np.sqrt(n)
    y = estimate_dense_realised(wide, x, offsets)
    assert y.covariance is None
    assert y.var == pytest.approx(float((wide**2).sum(axis=0).mean()), rel=1e-6)
    narrow = wide[:, :8]
    z = estimate_dense_realised(narrow, x, offsets)
    np.testing.assert_allclose(z.covariance, narrow.T @ narrow, rtol=1e-5, atol=1e-6)
