"""The analytic walk's shortcuts (issue 12, item 4: speed) against the
computation each one replaces: closed forms, diagonal covariances, products
regrouped. Each must agree with the exact (or finer) computation."""

from __future__ import annotations

import itertools
from dataclasses import replace

import keras
import numpy as np
import pytest
from scipy import special
from scipy.interpolate import RegularGridInterpolator

from autoinit.estimators.activations import (
    ACTIVATIONS,
    Activation,
    _bilinear_pair,
    _needed_nodes,
    element_moments,
    elu_family,
    relu_family,
)
from autoinit.estimators.closed_forms import closed_form_moments
from autoinit.estimators.convolutional import (
    _per_tap_responses,
    conv_pair_covariance,
    convolve_map,
    estimate_conv_realised,
)
from autoinit.estimators.core import _position_wise, estimate_dense_realised
from autoinit.estimators.covariance import (
    independent_variances,
    linear_covariance,
    linear_map_moments,
    linear_variances,
)
from autoinit.estimators.gaussian import expectation_over_density, standard_normal_grid
from autoinit.estimators.pooling import (
    _leaky_relu_of_max,
    estimate_max_pooling_per_channel,
    leaky_relu_slope,
    max_of_normals_density,
    smoothed_leaky_relu,
)
from autoinit.keras_adapter.weights import WeightWriter
from autoinit.moments import SignalMoments, _offsets_var, _stored
from autoinit.options import DISTRIBUTIONS


@pytest.mark.parametrize("slope", [0.0, 0.2, 0.05])
def test_smoothed_leaky_relu_matches_a_fine_quadrature(slope):
    f = relu_family(negative_slope=slope).fn
    u, wu = standard_normal_grid(40001, 14.0)
    c = np.array([-3.0, -0.4, 0.0, 0.7, 2.5, 1.0])
    a = np.array([0.5, 0.03, 1.0, 2.0, 0.0, 1e-9])
    first, second = smoothed_leaky_relu(c, a, slope)
    for i in range(c.size):
        y = f(c[i] + a[i] * u)
        assert first[i] == pytest.approx(wu @ y, rel=1e-7, abs=1e-12)
        assert second[i] == pytest.approx(wu @ (y * y), rel=1e-7, abs=1e-12)


def _smoothed_leaky_relu_reference(c, a, slope):
    """The closed form written plainly, a new array per step (what the
    in-place evaluation must equal bit for bit)."""
    positive = a > 0.0
    safe = np.where(positive, a, 1.0)
    z = np.where(positive, c / safe, 0.0)
    cdf = np.where(positive, special.ndtr(z), c > 0.0)
    density = np.where(positive, np.exp(-0.5 * z * z) * (a / np.sqrt(2.0 * np.pi)), 0.0)
    power = c * c + a * a
    relu1, relu2 = c * cdf + density, power * cdf + c * density
    if slope == 0.0:
        return relu1, relu2
    return (1.0 - slope) * relu1 + slope * c, (1.0 - slope * slope) * relu2 + slope * slope * power


@pytest.mark.parametrize("slope", [0.0, 0.2, 0.05])
def test_smoothed_leaky_relu_in_place_gives_the_same_values_bit_for_bit(slope):
    rng = np.random.default_rng(5)
    c = rng.normal(0.0, 2.0, (7, 301))
    a = rng.uniform(1e-6, 2.0, (7, 1))
    a[3] = 0.0  # a channel without a shared part: f(c) itself
    expected = _smoothed_leaky_relu_reference(c, a, slope)
    got = smoothed_leaky_relu(c.copy(), a, slope, np.empty((4, 7, 301)))
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)
    before = c.copy()
    for e, g in zip(expected, smoothed_leaky_relu(c, a, slope)):  # without work arrays
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(c, before)  # its input left alone


def test_leaky_relu_slope_reads_only_the_piecewise_linear_keys():
    assert leaky_relu_slope(ACTIVATIONS["relu"].key) == 0.0
    assert leaky_relu_slope(ACTIVATIONS["leaky_relu"].key) == 0.2
    assert leaky_relu_slope(relu_family(negative_slope=0.1).key) == pytest.approx(0.1)
    for other in (
        relu_family(max_value=6.0),
        relu_family(threshold=0.5),
        ACTIVATIONS["relu6"],
        ACTIVATIONS["elu"],
    ):
        assert leaky_relu_slope(other.key) is None


@pytest.mark.parametrize(("name", "window"), [("relu", 4), ("relu", 9), ("leaky_relu", 2)])
def test_max_pooling_per_channel_of_a_relu_matches_the_two_dimensional_quadrature(name, window):
    rng = np.random.default_rng(3)
    channels = 24
    d = rng.normal(size=channels) * 1.5
    r = rng.uniform(0.2, 3.0, channels)
    spread = r * rng.choice([0.0, 0.001, 0.01, 0.2, 0.6], channels)
    g = replace(SignalMoments.from_offsets(d, r), spread=spread)
    known = ACTIVATIONS[name]
    closed = estimate_max_pooling_per_channel(SignalMoments(0.0, 1.0, origin=(known, g)), window)
    # The same function under an unknown key takes the per-channel quadrature over u and M_K.
    anonymous = Activation(("test", name), known.fn, monotone=True)
    quadrature = estimate_max_pooling_per_channel(SignalMoments(0.0, 1.0, origin=(anonymous, g)), window)
    np.testing.assert_allclose(closed.offsets, quadrature.offsets, rtol=5e-5, atol=1e-9)
    np.testing.assert_allclose(closed.random_map(), quadrature.random_map(), rtol=5e-5, atol=1e-9)
    # And channel by channel against the expectation the estimate is defined by (that quadrature's
    # Simpson rule errs by up to 3e-5 at an unsmoothed kink: the test below holds the estimate to 1e-7).
    t, w = max_of_normals_density(window)
    independent = r - spread
    for c in range(channels):
        first, second, _ = expectation_over_density(known.fn, d[c], np.sqrt(independent[c]), t, w, spread[c])
        assert closed.offsets[c] == pytest.approx(first, rel=5e-5, abs=1e-9)
        assert closed.random_map()[c] == pytest.approx(second - first * first, rel=5e-5, abs=1e-9)


def _fine_leaky_relu_of_max(d, scale, shared, slope, window):
    """The expectation over ``u`` in closed form, over ``M_K`` by Simpson's
    rule on 60,001 nodes (the kink of an unsmoothed ReLU costs O(h^2))."""
    t = np.linspace(-9.0 if window < 8 else -4.0, 9.0, 60001)
    w = np.exp(np.log(window) - 0.5 * t * t + (window - 1) * special.log_ndtr(t))
    w[1:-1:2] *= 4.0
    w[2:-1:2] *= 2.0
    w /= w.sum()
    pairs = [smoothed_leaky_relu(d[c] + scale[c] * t, shared[c], slope) for c in range(d.size)]
    return np.array([one @ w for one, _ in pairs]), np.array([two @ w for _, two in pairs])


@pytest.mark.parametrize("window", [2, 4, 9, 49])
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_max_of_a_leaky_relu_matches_a_fine_quadrature_in_either_order_of_integration(window, slope):
    # shared / scale from 0 (ReLU's kink: M_K's tails) through the switch at
    # half M_K's deviation to 20 (smoothed: the coarse nodes); scale 0 too.
    ratios = np.array([0.0, 1e-4, 0.01, 0.1, 0.25, 0.3, 0.35, 0.4, 0.5, 1.0, 2.0, 5.0, 20.0])
    d = np.repeat(np.linspace(-3.0, 3.0, 7), ratios.size)
    scale = np.full(d.size, 0.8)
    scale[-7:] = 0.0
    shared = scale * np.tile(ratios, 7)
    shared[-7:] = np.linspace(0.0, 1.0, 7)
    first, second = _leaky_relu_of_max(d, scale, shared, slope, window)
    fine_first, fine_second = _fine_leaky_relu_of_max(d, scale, shared, slope, window)
    np.testing.assert_allclose(first, fine_first, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(second, fine_second, rtol=1e-7, atol=1e-9)


def _explicit_matrix(apply, in_shape) -> np.ndarray:
    """The linear map ``apply`` as a dense ``(N_out, N_in)`` matrix."""
    n = int(np.prod(in_shape))
    return np.asarray(apply(np.eye(n).reshape(n, *in_shape))).reshape(n, -1).T


def test_a_diagonal_covariance_gives_the_same_linear_map_moments():
    rng = np.random.default_rng(4)
    in_shape = (6, 6, 3)
    n = int(np.prod(in_shape))
    kernel = rng.normal(size=(3, 3, 3, 4))
    apply = lambda b: convolve_map(b, kernel, (1, 1), "same", (1, 1))  # noqa: E731
    a = _explicit_matrix(apply, in_shape)
    variances = rng.uniform(0.5, 2.0, n)
    c = np.diag(variances)
    exact = a @ c @ a.T
    assert independent_variances(c) is not None
    np.testing.assert_allclose(linear_covariance(apply, c, in_shape), exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linear_variances(apply, c, in_shape), np.diag(exact), rtol=1e-12)
    # Off-diagonal entries: the general path.
    c[0, 1] = c[1, 0] = 0.3
    assert independent_variances(c) is None
    np.testing.assert_allclose(linear_variances(apply, c, in_shape), np.diag(a @ c @ a.T), rtol=1e-12)
    # Through linear_map_moments, an output (16x16x8) too large to keep a covariance: A**2 diag(C).
    wide = rng.normal(size=(3, 3, 3, 8))
    big_shape = (16, 16, 3)
    apply_wide = lambda b: convolve_map(b, wide, (1, 1), "same", (1, 1))  # noqa: E731
    d = rng.normal(size=big_shape)
    random = rng.uniform(0.5, 2.0, big_shape)
    x = SignalMoments.from_offsets(d, random).with_covariance(np.diag(random.ravel()))
    y = linear_map_moments(x, d, apply_wide, lambda v: convolve_map(v, wide * wide, (1, 1), "same", (1, 1)))
    a_big = _explicit_matrix(apply_wide, big_shape)
    exact_variances = np.einsum("ji,i,ji->j", a_big, random.ravel(), a_big)
    # SignalMoments stores its maps in float32.
    np.testing.assert_allclose(np.ravel(y.random_map()), exact_variances, rtol=1e-6)
    np.testing.assert_allclose(np.ravel(y.offsets), a_big @ d.ravel(), rtol=1e-6, atol=1e-6)


def test_conv_pair_covariance_per_channel_equals_the_map_form():
    rng = np.random.default_rng(5)
    cases = [
        ((7, 7), (4, 4), 1, 12, 12, (1, 1), "same"),
        ((3, 3), (6, 6), 4, 8, 1, (1, 1), "same"),
        ((3, 3), (7, 7), 2, 6, 3, (2, 2), "valid"),
        ((5,), (9,), 2, 6, 3, (2,), "same"),
    ]
    for kernel_size, spatial, per_in, out, groups, strides, padding in cases:
        w = rng.normal(size=(*kernel_size, per_in, out))
        r = rng.uniform(0.5, 2.0, per_in * groups)
        dilation = (1,) * len(kernel_size)
        per_channel = conv_pair_covariance(w, r, spatial, strides, padding, dilation, groups)
        as_map = conv_pair_covariance(
            w, np.broadcast_to(r, (*spatial, r.size)).copy(), spatial, strides, padding, dilation, groups
        )
        assert per_channel == pytest.approx(as_map, rel=1e-12, abs=1e-15)


def test_per_tap_responses_equal_one_product_per_tap():
    rng = np.random.default_rng(6)
    for per_in, out, groups in [(1, 12, 12), (4, 8, 1), (2, 6, 3)]:
        w = rng.normal(size=(3, 3, per_in, out))
        values = rng.normal(size=per_in * groups)
        expected = np.zeros((3, 3, out))
        per_out = out // groups
        for t, g in itertools.product(itertools.product(range(3), range(3)), range(groups)):
            block = values[g * per_in : (g + 1) * per_in]
            expected[t][g * per_out : (g + 1) * per_out] = block @ w[t][:, g * per_out : (g + 1) * per_out]
        np.testing.assert_allclose(_per_tap_responses(values, w, groups), expected, rtol=1e-12, atol=1e-12)


def test_position_wise_squared_products_equal_the_squared_kernel():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(700, 33))
    for values in (
        rng.uniform(size=(3, 2, 700)),
        np.broadcast_to(np.asarray(1.7), (2, 2, 700)),
        rng.uniform(size=700),
    ):
        np.testing.assert_allclose(_position_wise(values, w, squared=True), values @ (w * w), rtol=1e-12)
        np.testing.assert_allclose(_position_wise(values, w), values @ w, rtol=1e-12, atol=1e-12)


def test_dense_and_convolution_realised_moments_are_unchanged_by_the_shortcuts():
    rng = np.random.default_rng(8)
    w = rng.normal(size=(300, 40))
    d = rng.normal(size=(2, 2, 300))
    x = SignalMoments.from_offsets(d, 0.8)
    y = estimate_dense_realised(w, x, d)
    # SignalMoments stores its maps in float32.
    np.testing.assert_allclose(y.offsets, d @ w, rtol=1e-6, atol=1e-6)
    random = np.broadcast_to(y.random_map(), y.offsets.shape)
    np.testing.assert_allclose(random, 0.8 * np.ones_like(d) @ (w * w), rtol=1e-6)
    kernel = rng.normal(size=(3, 3, 1, 6))
    per_channel = SignalMoments.from_offsets(rng.normal(size=6), rng.uniform(0.5, 1.5, 6))
    offsets = np.broadcast_to(per_channel.offsets, (5, 5, 6))
    z = estimate_conv_realised(kernel, per_channel, offsets, (1, 1), "same", (1, 1), groups=6)
    full = convolve_map(np.ascontiguousarray(offsets), kernel, (1, 1), "same", (1, 1), groups=6)
    np.testing.assert_allclose(z.offsets, full, rtol=1e-6, atol=1e-6)


CLOSED_FORM_ACTIVATIONS = [
    ACTIVATIONS["hard_sigmoid"],
    ACTIVATIONS["hard_swish"],
    ACTIVATIONS["hard_tanh"],
    ACTIVATIONS["sparse_sigmoid"],
    ACTIVATIONS["leaky_relu"],
    relu_family(negative_slope=0.1),
    ACTIVATIONS["elu"],
    elu_family(0.5),
    ACTIVATIONS["celu"],
    ACTIVATIONS["selu"],
]


@pytest.mark.parametrize("activation", CLOSED_FORM_ACTIVATIONS, ids=lambda a: str(a.key))
def test_closed_form_activation_moments_match_a_fine_quadrature(activation):
    # Offsets on both sides of every kink, scales from far below to far above their spacing.
    d = np.array([-8.0, -3.2, -3.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.9, 3.5, 8.0, 0.5, -2.0, 0.7])
    s = np.array([2.0, 0.5, 1.0, 1.0, 0.1, 1.0, 3.0, 0.05, 0.2, 1.0, 2.0, 0.0, 10.0, 0.02])
    first, second = closed_form_moments(activation.key, activation.fn, d, s)
    z, w = standard_normal_grid(200001, 30.0)
    for i in range(d.size):
        y = activation.fn(d[i] + s[i] * z)
        mean, square = w @ y, w @ (y * y)
        assert first[i] == pytest.approx(mean, rel=1e-6, abs=1e-10)
        assert second[i] == pytest.approx(square, rel=1e-6, abs=1e-10)
        assert second[i] - first[i] ** 2 == pytest.approx(square - mean * mean, rel=1e-5, abs=1e-10)
    # element_moments takes them (no table): exact where the table erred with scales far below
    # its offsets' spacing (hard swish on a map spanning -6..10 with scales ~0.05).
    via = element_moments(activation, d, s)
    np.testing.assert_allclose(via[0], first, rtol=1e-12, atol=1e-15)


def test_other_activations_have_no_closed_form_here():
    for name in ("gelu", "silu", "tanh", "sigmoid", "softplus", "relu6", "mish"):
        a = ACTIVATIONS[name]
        assert closed_form_moments(a.key, a.fn, np.zeros(2), np.ones(2)) is None


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("shape", [(3, 3, 8, 16), (40, 24)])
def test_a_draft_equals_the_write_read_back_and_the_write_reuses_its_draw(distribution, shape, monkeypatch):
    from autoinit.keras_adapter import weights

    variable = keras.Variable(np.zeros(shape, np.float32))
    reference = WeightWriter(distribution, seed=5)
    reference.write(keras.layers.Dense(4), variable, 0.03, "7:kernel", None)
    written = np.asarray(variable.numpy(), np.float64)
    reference.write(keras.layers.Dense(4), variable, 0.03 * 0.8, "7:kernel", None)
    rescaled = variable.numpy()

    draws = []
    unit_draw = weights._unit_draw
    monkeypatch.setattr(weights, "_unit_draw", lambda *key: draws.append(key) or unit_draw(*key))
    writer = WeightWriter(distribution, seed=5)
    drafted = writer.draft(shape, 0.03, "7:kernel", variable.dtype)
    assert drafted.dtype == np.float64
    np.testing.assert_array_equal(drafted, written)
    writer.write(keras.layers.Dense(4), variable, 0.03 * 0.8, "7:kernel", None)
    np.testing.assert_array_equal(variable.numpy(), rescaled)
    assert len(draws) == 1  # the write took the draft's unit draw


def _needed_nodes_by_every_candidate(grids, values):
    """The reference: every combination of ``{L, R, L + 1, R + 1}`` per axis marked."""
    needed = np.zeros(tuple(g.size for g in grids), dtype=bool)
    candidates = []
    for g, v in zip(grids, values):
        if g[-1] == g[0]:
            candidates.append([np.zeros(v.size, dtype=int)])
            continue
        left = np.clip(np.searchsorted(g, v, side="left") - 1, 0, g.size - 1)
        right = np.clip(np.searchsorted(g, v, side="right") - 1, 0, g.size - 1)
        candidates.append([left, right, np.minimum(left + 1, g.size - 1), np.minimum(right + 1, g.size - 1)])
    for nodes in itertools.product(*candidates):
        needed[nodes] = True
    return needed


@pytest.mark.parametrize("case", ["random", "at_nodes", "one_offset", "one_scale", "outside"])
def test_needed_nodes_equal_every_candidate_marked(case):
    rng = np.random.default_rng(4)
    grid_d, grid_s = np.linspace(-2.0, 3.0, 41), np.geomspace(0.01, 2.0, 9)
    d, s = rng.uniform(-2.0, 3.0, 500), rng.uniform(0.01, 2.0, 500)
    if case == "at_nodes":  # points on nodes, the end nodes included
        d[:200], s[:200] = rng.choice(grid_d, 200), rng.choice(grid_s, 200)
    elif case == "one_offset":
        grid_d, d = np.full(41, 0.5), np.full(500, 0.5)
    elif case == "one_scale":
        grid_s, s = np.array([0.3]), np.full(500, 0.3)
    elif case == "outside":
        d, s = d * 2.0, s * 3.0
    expected = _needed_nodes_by_every_candidate((grid_d, grid_s), (d, s))
    np.testing.assert_array_equal(_needed_nodes((grid_d, grid_s), (d, s)), expected)


def test_both_tables_interpolated_at_once_equal_each_interpolated_alone():
    rng = np.random.default_rng(6)
    grids = (np.linspace(-1.0, 2.0, 17), np.geomspace(0.1, 3.0, 5))
    table1, table2 = rng.normal(size=(17, 5)), rng.exponential(size=(17, 5))
    query = np.stack([rng.uniform(-1.5, 2.5, 300), rng.uniform(0.0, 4.0, 300)], axis=-1)
    alone = [
        RegularGridInterpolator(grids, t, method="linear", bounds_error=False, fill_value=None)(query)
        for t in (table1, table2)
    ]
    first, second = _bilinear_pair(grids, table1, table2, query, (300,))
    np.testing.assert_array_equal(first, alone[0])
    np.testing.assert_array_equal(second, alone[1])
    table2[3, 2] = np.inf  # not finite: each table alone
    first, second = _bilinear_pair(grids, table1, table2, query, (300,))
    np.testing.assert_array_equal(first, alone[0])


def test_offsets_variance_kept_per_stored_map_equals_its_variance():
    x = SignalMoments.from_offsets(np.random.default_rng(2).normal(size=(4, 4, 8)), 0.3)
    assert _offsets_var(x.offsets) == float(x.offsets.var())
    assert x.random_var == max(x.var - float(x.offsets.var()), 0.0)
    y = replace(x, offsets=_stored(np.ones((4, 4, 8))))  # another map: its own variance
    assert y.random_var == max(y.var, 0.0)
    writable = np.arange(6.0).reshape(2, 3)
    assert _offsets_var(writable) == float(writable.var())
    writable[0] = 10.0  # a writable array is never kept
    assert _offsets_var(writable) == float(writable.var())


def test_silu_in_place_equals_the_product():
    x = np.random.default_rng(8).normal(0.0, 6.0, 1000)
    sigmoid = ACTIVATIONS["sigmoid"].fn
    np.testing.assert_array_equal(ACTIVATIONS["swish"].fn(x), x * sigmoid(x))
    assert ACTIVATIONS["silu"].fn(1.5) == 1.5 * sigmoid(1.5)


def test_sigmoid_in_place_is_scipys_expit_within_rounding():
    x = np.concatenate([np.random.default_rng(9).normal(0.0, 12.0, 5000), [0.0, 800.0, -800.0]])
    sigmoid = ACTIVATIONS["sigmoid"].fn
    np.testing.assert_allclose(sigmoid(x), special.expit(x), rtol=4e-16, atol=0.0)
    assert sigmoid(np.array([np.inf, -np.inf]))[0] == 1.0 and sigmoid(-np.inf) == 0.0
    assert np.isnan(sigmoid(np.nan)) and sigmoid(0.0) == 0.5
    before = x.copy()
    sigmoid(x)
    np.testing.assert_array_equal(x, before)  # in place on its own array, never the input


def test_bilinear_tables_equal_scipys_regular_grid_interpolator_bit_for_bit():
    from scipy.interpolate import RegularGridInterpolator

    from autoinit.estimators.activations import _bilinear_pair

    rng = np.random.default_rng(12)
    grid_d, grid_s = np.sort(rng.uniform(-5.0, 5.0, 65)), np.geomspace(0.01, 5.0, 17)
    tables = rng.normal(size=(2, 65, 17)) * np.array([1.0, 1e3])[:, None, None]
    query = np.stack([rng.uniform(-6.0, 6.0, 2000), rng.uniform(1e-3, 8.0, 2000)], axis=-1)
    query[:17, 0], query[17:34, 1] = grid_d[:17], grid_s  # on nodes; beyond the grid: extrapolated
    tables[1, 7, :] = np.inf  # a row no query between nodes 6 and 8 reads: on node 7, scipy's cell is 7-8
    got = _bilinear_pair((grid_d, grid_s), tables[0], tables[1], query, (40, 50))
    for table, values in zip(tables, got):
        scipy_values = RegularGridInterpolator(
            (grid_d, grid_s), table, method="linear", bounds_error=False, fill_value=None
        )(query)
        np.testing.assert_array_equal(values, scipy_values.reshape(40, 50))


def test_the_walk_does_not_import_scipy_interpolate():
    import subprocess
    import sys

    script = (
        "import sys, keras\n"
        "from autoinit import AutoInit\n"
        "inputs = keras.Input((8, 8, 3))\n"
        "x = keras.layers.Conv2D(8, 3, activation='swish')(inputs)\n"
        "x = keras.layers.Dense(4, activation='gelu')(keras.layers.GlobalAveragePooling2D()(x))\n"
        "AutoInit(seed=1).initialize_model(keras.Model(inputs, x))\n"
        "print('scipy.interpolate' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_element_values_a_few_ulps_apart_get_finite_moments():
    """``linspace`` over a range of a few ulps repeats its first node: the
    table then holds one element value (a cell of zero width gave NaN)."""
    from autoinit.estimators.activations import element_moments

    for base in (1.0, -0.3, 250.0):
        d = np.array([base, np.nextafter(base, np.inf), np.nextafter(np.nextafter(base, np.inf), np.inf)])
        first, second = element_moments(ACTIVATIONS["swish"], d, np.array([1.0, 2.0, 3.0]), wide=True)
        assert np.isfinite(first).all() and np.isfinite(second).all(), (base, first, second)
        same = element_moments(ACTIVATIONS["swish"], np.full(3, base), np.array([1.0, 2.0, 3.0]), wide=True)
        np.testing.assert_allclose(first, same[0], rtol=1e-12)
