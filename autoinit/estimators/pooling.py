"""Pooling layers (Average/Max, 1/2/3D, and their Global forms).

The paper (Appendix A, eqs. 7-10) writes the output moments as K-dimensional
integrals over a pooling window and falls back to Monte Carlo. Both are
avoidable:

* Average pooling is linear. Inside one channel the window's elements share
  the channel's constant offset (``shared_var``) and have independent
  fluctuations, so averaging K of them gives
  ``mu_out = mu_in`` and ``nu_out = shared + (nu_in - shared) / K``.
* Max pooling of K i.i.d. Gaussians is ``mu + sigma * M_K`` where ``M_K`` is
  the largest of K standard normals, whose density ``K phi(t) Phi(t)^(K-1)``
  is one-dimensional: a single quadrature gives its moments exactly.
  When the input is ``f(g)`` for a non-decreasing activation ``f`` of a
  Gaussian ``g`` (ReLU -> MaxPool), ``max f(g_i) = f(max g_i)``, so the
  estimate stays exact instead of treating ``f(g)`` as Gaussian.

Assumption: elements of one window are independent given the channel offset.

Once weights are drawn and a map of expected values is known (``offsets``,
and at best the covariance ``SignalMoments.covariance``), neither holds: the
elements of a window have their own expected values (a stride-2 transposed
convolution writes a periodic pattern) and are correlated. ``estimate_max_pooling_map``
then takes each window's maximum by Clark's (1961) recursion over its
elements, which carries the covariance of the running maximum with the
elements still to come: for ``M = max(X_1, X_2)`` with ``theta^2 =
Var(X_1 - X_2)`` and ``a = (mu_1 - mu_2) / theta``, ``E[M] = mu_1 Phi(a) +
mu_2 Phi(-a) + theta phi(a)``, ``E[M^2] = (mu_1^2 + s_1) Phi(a) + (mu_2^2 +
s_2) Phi(-a) + (mu_1 + mu_2) theta phi(a)`` and ``Cov(M, X_3) = Cov(X_1,
X_3) Phi(a) + Cov(X_2, X_3) Phi(-a)``.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy import special

from autoinit.estimators.activations import estimate_activation
from autoinit.estimators.convolutional import padding_geometry
from autoinit.estimators.covariance import linear_map_moments
from autoinit.estimators.gaussian import expectation_over_density, hermite_nodes
from autoinit.moments import COVARIANCE_ELEMENTS, SignalMoments

__all__ = [
    "estimate_average_pooling",
    "estimate_max_pooling",
    "estimate_max_pooling_map",
    "estimate_average_pooling_map",
    "average_pooling_map",
    "clark_maximum",
    "max_of_normals_density",
    "max_of_normals_moments",
    "leaky_relu_slope",
    "smoothed_leaky_relu",
]


def estimate_average_pooling(x: SignalMoments, window: float) -> SignalMoments:
    """Average of ``window`` elements (the harmonic-mean window size at borders).

    ``mu_out = mu_in``; ``nu_out = shared + e + (nu_in - shared - e) / K``:
    the shared part and the per-example part ``e`` (``example_shared_var``,
    constant over the window) pass unchanged, the rest shrinks by ``K``.
    """
    k = max(float(window), 1.0)
    e = x.example_shared_var
    if x.offsets is not None and x.offsets.ndim == 1:  # each channel's expected value passes
        random = e + (x.random_map() - e) / k
        return replace(SignalMoments.from_offsets(x.offsets, random), example_shared_var=e)
    return SignalMoments(
        x.mean, x.shared_var + e + (x.fluctuating_var - e) / k, x.shared_var, example_shared_var=e
    )


_DENSITY_NODES = 6001
"""Nodes of ``M_K``'s density for its moments and tail tables (odd: Simpson)."""


@lru_cache(maxsize=4096)
def max_of_normals_density(window: int, nodes: int = _DENSITY_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and quadrature weights of ``M_K``, the max of K standard normals
    (Simpson's rule on ``nodes`` evenly spaced points, odd)."""
    t = _max_support(window, nodes)
    w = _max_density(window, t)
    w[1:-1:2] *= 4.0
    w[2:-1:2] *= 2.0
    w /= w.sum()
    return t, w


def _max_support(window: int, nodes: int) -> np.ndarray:
    # The max concentrates near sqrt(2 log K); cover it generously.
    k = max(int(window), 1)
    return np.linspace(-9.0 if k < 8 else -4.0, 9.0, nodes)


def _max_density(window: int, t: np.ndarray) -> np.ndarray:
    """``K phi(t) Phi(t)^(K-1)``, the density of ``M_K``."""
    k = max(int(window), 1)
    return np.exp(np.log(k) - 0.5 * t * t - 0.5 * np.log(2 * np.pi) + (k - 1) * special.log_ndtr(t))


def max_of_normals_moments(window: int) -> tuple[float, float]:
    """``(E[M_K], E[M_K^2])``."""
    t, w = max_of_normals_density(window)
    return float(w @ t), float(w @ (t * t))


def estimate_max_pooling(x: SignalMoments, window: int) -> SignalMoments:
    """Max over ``window`` elements of one channel.

    Args:
        x: the input moments.
        window: elements per pooling window (K).

    When ``x.origin`` is ``(f, g)`` (``x = f(g)`` elementwise, ``f``
    non-decreasing, ``g`` Gaussian), the result is exact:
    ``E[f(mu_g + sqrt(s_g) u + sigma_g M_K)^r]``.
    """
    k = max(int(window), 1)
    if k == 1:
        return x
    t, w = max_of_normals_density(k)
    if x.origin is not None and x.origin[0].monotone:
        f, g = x.origin
        first, second, shared = expectation_over_density(
            f.fn, g.mean, np.sqrt(g.fluctuating_var), t, w, g.shared_var
        )
        return SignalMoments(first, second - first * first, shared)
    m1, m2 = float(w @ t), float(w @ (t * t))
    sigma = np.sqrt(x.fluctuating_var)
    mean = x.mean + sigma * m1
    var = x.shared_var + x.fluctuating_var * (m2 - m1 * m1)
    return SignalMoments(mean, var, x.shared_var)


def estimate_max_pooling_per_channel(x: SignalMoments, window: int) -> SignalMoments | None:
    """``estimate_max_pooling`` channel by channel, for realised per-channel
    expected values (``offsets`` of shape ``(channels,)``: a map too large to
    keep, reduced): the maximum of ``K`` elements of channel ``c`` around
    ``d_c`` with variance ``r_c``, through ``f`` when ``x = f(g)``; the part
    of ``r_c`` that is the reduced map's position spread
    (``SignalMoments.spread``) is shared by a window's neighbours. Keeps the
    per-channel offsets that the next weighted layer reads (pooling them into
    one shared variance loses them). A ReLU or leaky ReLU ``f`` takes the shared
    part in closed form (``_leaky_relu_of_max``). None without per-channel offsets."""
    k = max(int(window), 1)
    source, f = x, None
    if x.origin is not None and x.origin[0].monotone:
        f, source = x.origin[0].fn, x.origin[1]
    if source.offsets is None or source.offsets.ndim != 1 or k == 1:
        return None
    d = np.asarray(source.offsets, np.float64)
    r = np.broadcast_to(np.asarray(source.random_map(), np.float64), d.shape)
    spread = np.zeros_like(d)
    if source.spread is not None and np.shape(source.spread) == d.shape:
        spread = np.minimum(np.asarray(source.spread, np.float64), r)  # shared by a window's elements
    independent = r - spread
    t, w = max_of_normals_density(k)
    if f is None:
        m1, m2 = float(w @ t), float(w @ (t * t))
        return SignalMoments.from_offsets(
            d + np.sqrt(independent) * m1, spread + independent * (m2 - m1 * m1)
        )
    slope = leaky_relu_slope(x.origin[0].key)
    if slope is not None:
        first, second = _leaky_relu_of_max(d, np.sqrt(independent), np.sqrt(spread), slope, k)
        return SignalMoments.from_offsets(first, np.maximum(second - first * first, 0.0))
    first, second = np.empty_like(d), np.empty_like(d)
    for c in range(d.size):
        first[c], second[c], _ = expectation_over_density(
            f, d[c], float(np.sqrt(independent[c])), t, w, float(spread[c])
        )
    return SignalMoments.from_offsets(first, np.maximum(second - first * first, 0.0))


def leaky_relu_slope(key: object) -> float | None:
    """The slope ``alpha`` below zero when the activation keyed ``key``
    (``Activation.key``) is ``max(x, 0) + alpha min(x, 0)`` (ReLU, leaky
    ReLU, Keras' ``relu`` with a negative slope), else None."""
    if key == ("relu",):
        return 0.0
    if key == ("leaky_relu",):
        return 0.2
    if isinstance(key, tuple) and len(key) == 4 and key[0] == "relu" and key[2] is None and key[3] == 0.0:
        return float(key[1])
    return None


def smoothed_leaky_relu(
    c: np.ndarray, a: np.ndarray, slope: float, work: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(E[f(c + a u)], E[f(c + a u)^2])`` for ``u ~ N(0, 1)`` and
    ``f(x) = max(x, 0) + slope min(x, 0)``, in closed form: with ``z = c / a``,
    ``E[relu] = c Phi(z) + a phi(z)``, ``E[relu^2] = (c^2 + a^2) Phi(z) + c a
    phi(z)``; ``f = (1 - slope) relu(x) + slope x`` and ``x relu(x) =
    relu(x)^2`` give ``E[f] = (1 - slope) E[relu] + slope c`` and ``E[f^2] =
    (1 - slope^2) E[relu^2] + slope^2 (c^2 + a^2)``. ``a = 0``: ``f(c)``.

    ``work``: four arrays of ``c``'s shape to compute in, and ``c`` itself is
    then overwritten (a fresh array per step costs more than its arithmetic:
    page faults); without it, new ones and a copy of ``c``."""
    a = np.asarray(a, dtype=np.float64)
    if work is None:
        shape = np.broadcast_shapes(np.shape(c), a.shape)
        c = np.array(np.broadcast_to(np.asarray(c, dtype=np.float64), shape))
        work = np.empty((4, *shape))
    z, density, relu1, power = work
    positive = a > 0.0
    safe = np.where(positive, a, 1.0)
    np.divide(c, safe, out=z)
    np.multiply(z, -0.5, out=density)  # exp(-0.5 z z) a / sqrt(2 pi): a phi(z), 0 where a = 0
    density *= z
    np.exp(density, out=density)
    density *= safe / np.sqrt(2.0 * np.pi)
    np.copyto(density, 0.0, where=~positive)
    cdf = special.ndtr(z, out=z)
    np.copyto(cdf, c > 0.0, where=~positive)
    np.multiply(c, cdf, out=relu1)
    relu1 += density  # c Phi(z) + a phi(z)
    density *= c
    np.multiply(c, c, out=power)
    power += a * a
    relu2 = np.multiply(cdf, power, out=cdf)
    relu2 += density  # (c^2 + a^2) Phi(z) + c a phi(z)
    if slope == 0.0:
        return relu1, relu2
    relu1 *= 1.0 - slope
    c *= slope
    relu1 += c
    relu2 *= 1.0 - slope * slope
    power *= slope * slope
    relu2 += power
    return relu1, relu2


_COARSE_NODES = 401
"""Nodes of ``M_K``'s density where the integrand is smoothed by a channel's
shared part (``_leaky_relu_of_max``): within 1e-11 of a 60,001-node rule
there."""

_CHANNEL_BLOCK = 64
"""Channels evaluated together on the coarse nodes (bounds the arrays)."""


def _leaky_relu_of_max(
    d: np.ndarray, scale: np.ndarray, shared: np.ndarray, slope: float, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel ``(E[f(d + shared u + scale M_K)], E[f(...)^2])`` for a
    leaky ReLU ``f``, ``u ~ N(0, 1)`` and ``M_K`` independent, each channel in
    the order of integration whose inner integral is exact and whose outer
    one is smooth:

    * ``shared`` at least half ``M_K``'s deviation times ``scale``: the
      expectation over ``u`` in closed form (``smoothed_leaky_relu``), then
      Simpson's rule over ``M_K`` on ``_COARSE_NODES`` nodes (the closed form
      is smooth on the scale of ``shared / scale``);
    * narrower (ReLU's kink barely smoothed): the expectation over ``M_K`` in
      closed form from its tail moments (``_max_tails``), then 48
      Gauss-Hermite nodes of ``u`` (that expectation is smooth in ``u`` on
      the scale of ``scale / shared``).

    Both within 1e-10 (relative) of a fine two-dimensional quadrature."""
    m1, m2 = max_of_normals_moments(window)
    deviation = float(np.sqrt(max(m2 - m1 * m1, 0.0)))
    narrow = shared <= 0.5 * deviation * scale
    first, second = np.empty_like(d), np.empty_like(d)
    if narrow.any():
        first[narrow], second[narrow] = _leaky_relu_of_max_narrow(
            d[narrow], scale[narrow], shared[narrow], slope, window
        )
    wide = np.flatnonzero(~narrow)
    t, w = max_of_normals_density(window, _COARSE_NODES)
    buffers = np.empty((5, min(_CHANNEL_BLOCK, wide.size), t.size))
    for start in range(0, wide.size, _CHANNEL_BLOCK):
        block = wide[start : start + _CHANNEL_BLOCK]
        c = np.multiply(scale[block, None], t[None, :], out=buffers[0, : block.size])
        c += d[block, None]  # d + scale t, as d + (scale t) rounds
        one, two = smoothed_leaky_relu(c, shared[block, None], slope, buffers[1:, : block.size])
        first[block], second[block] = one @ w, two @ w
    return first, second


def _leaky_relu_of_max_narrow(
    d: np.ndarray, scale: np.ndarray, shared: np.ndarray, slope: float, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """``_leaky_relu_of_max`` over ``M_K`` in closed form: with ``v = d +
    shared u`` and ``x = -v / scale``, ``E[relu(v + scale M)] = v S_0(x) +
    scale S_1(x)`` and ``E[relu(v + scale M)^2] = v^2 S_0 + 2 v scale S_1 +
    scale^2 S_2``, ``S_j(x) = E[M^j; M > x]``; ``f = (1 - slope) relu +
    slope id`` as in ``smoothed_leaky_relu``; then over ``u``."""
    u, wu = hermite_nodes()
    v = d[:, None] + shared[:, None] * u[None, :]
    s = scale[:, None]
    moving = s > 0.0
    x = np.divide(-v, s, out=np.zeros_like(v), where=moving)
    s0, s1, s2 = _max_tails(window, x)
    relu1 = np.where(moving, v * s0 + s * s1, np.maximum(v, 0.0))
    relu2 = np.where(moving, (v * v) * s0 + 2.0 * v * s * s1 + (s * s) * s2, np.maximum(v, 0.0) ** 2)
    if slope != 0.0:
        m1, m2 = max_of_normals_moments(window)
        relu1 = (1.0 - slope) * relu1 + slope * (v + s * m1)
        relu2 = (1.0 - slope * slope) * relu2 + slope * slope * (v * v + 2.0 * v * s * m1 + s * s * m2)
    return relu1 @ wu, relu2 @ wu


@lru_cache(maxsize=256)
def _max_tail_table(window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, density, S)``: ``S[j, i] = E[M_K^j; M_K > t_i]`` for ``j = 0, 1,
    2`` on ``max_of_normals_density``'s nodes, summed from the top by
    Simpson's rule on each interval (its midpoint's density computed)."""
    t = _max_support(window, _DENSITY_NODES)
    h = t[1] - t[0]
    mid = 0.5 * (t[:-1] + t[1:])
    p, p_mid = _max_density(window, t), _max_density(window, mid)
    tails = np.zeros((3, t.size))
    for j in range(3):
        g, g_mid = p * t**j, p_mid * mid**j
        pieces = h / 6.0 * (g[:-1] + 4.0 * g_mid + g[1:])
        tails[j, :-1] = np.cumsum(pieces[::-1])[::-1]
    for array in (t, p, tails):
        array.setflags(write=False)
    return t, p, tails


def _max_tails(window: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S_j(x) = E[M_K^j; M_K > x]``, ``j = 0, 1, 2``, by cubic Hermite
    interpolation of ``_max_tail_table`` with the exact slopes ``-t^j p(t)``
    (``x`` outside the table: its end values; beyond 9 the upper tail is ``K Phi(-9)``, 1e-19 per
    element of the window, 6e-15 for a 224x224 global pool)."""
    t, p, tails = _max_tail_table(window)
    h = t[1] - t[0]
    x = np.clip(x, t[0], t[-1])
    i = np.minimum(((x - t[0]) / h).astype(np.intp), t.size - 2)
    s = (x - t[i]) / h
    one_minus = 1.0 - s
    h00, h01 = (1.0 + 2.0 * s) * one_minus * one_minus, s * s * (3.0 - 2.0 * s)
    h10, h11 = h * s * one_minus * one_minus, h * s * s * (s - 1.0)
    left, right = t[i], t[i + 1]
    p_left, p_right = p[i], p[i + 1]
    out = []
    for j in range(3):
        slope_left, slope_right = -(left**j) * p_left, -(right**j) * p_right
        out.append(h00 * tails[j][i] + h10 * slope_left + h01 * tails[j][i + 1] + h11 * slope_right)
    return out[0], out[1], out[2]


def clark_maximum(means: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the maximum of each row's Gaussian elements.

    Args:
        means: ``(windows, K)`` expected values (``-inf`` marks no element).
        covariance: ``(windows, K, K)`` their covariances.

    Returns:
        ``(mean, var)``, each ``(windows,)``, by Clark's recursion (module docstring).
    """
    mu = np.asarray(means, dtype=np.float64)
    cov = np.asarray(covariance, dtype=np.float64)
    # Present elements first, so the recursion starts from one (a window
    # whose first tap falls on padding would otherwise start at -inf).
    order = np.argsort(~np.isfinite(mu), axis=1, kind="stable")
    rows = np.arange(mu.shape[0])[:, None]
    mu = np.take_along_axis(mu, order, axis=1)
    cov = cov[rows[:, :, None], order[:, :, None], order[:, None, :]]
    present = np.isfinite(mu)
    mean, var, with_rest = mu[:, 0].copy(), cov[:, 0, 0].copy(), cov[:, 0, :].copy()
    for k in range(1, mu.shape[1]):
        mu_k, var_k = mu[:, k], cov[:, k, k]
        theta = np.sqrt(np.maximum(var + var_k - 2.0 * with_rest[:, k], 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (mean - mu_k) / theta
        degenerate = ~(theta > 1e-12 * np.maximum(np.abs(mean) + np.abs(mu_k), 1.0))
        win = np.where(
            degenerate, (mean >= mu_k).astype(np.float64), special.ndtr(np.where(degenerate, 0.0, a))
        )
        density = np.where(
            degenerate, 0.0, np.exp(-0.5 * np.where(degenerate, 0.0, a) ** 2) / np.sqrt(2.0 * np.pi)
        )
        win = np.where(present[:, k], win, 1.0)  # a missing element never wins
        density = np.where(present[:, k], density, 0.0)
        safe_mu_k = np.where(present[:, k], mu_k, 0.0)
        new_mean = mean * win + safe_mu_k * (1.0 - win) + theta * density
        second = (
            (mean * mean + var) * win
            + (safe_mu_k**2 + var_k) * (1.0 - win)
            + (mean + safe_mu_k) * theta * density
        )
        var = np.maximum(second - new_mean * new_mean, 0.0)
        with_rest = with_rest * win[:, None] + cov[:, k, :] * (1.0 - win[:, None])
        mean = new_mean
    return mean, var


def _windows(shape: tuple, pool: tuple, strides: tuple, padding: str) -> np.ndarray:
    """Element indices (C order over ``shape`` = ``(*positions, channels)``) of
    every pooling window: ``(*outputs, channels, K)``, -1 where the window
    covers padding."""
    rank = len(pool)
    index = np.arange(int(np.prod(shape))).reshape(shape)
    geometry = [padding_geometry(n, k, s, padding) for n, k, s in zip(shape[:rank], pool, strides)]
    pads = [(before, after) for before, after, _ in geometry]
    outs = [out for _, _, out in geometry]
    padded = np.pad(index, pads + [(0, 0)], constant_values=-1)
    taps = []
    for tap in itertools.product(*(range(k) for k in pool)):
        window = tuple(slice(t, t + (o - 1) * s + 1, s) for t, o, s in zip(tap, outs, strides))
        taps.append(padded[window])
    return np.stack(taps, axis=-1)


def estimate_max_pooling_map(
    x: SignalMoments, pool: tuple, strides: tuple, padding: str
) -> SignalMoments | None:
    """Max pooling of a map of expected values (``x.offsets``, channels last),
    window by window (Clark's recursion; module docstring); None without a
    full map. With ``x = f(g)`` for a non-decreasing ``f`` and a map for
    ``g``, the maximum is taken over ``g`` and ``f`` applied to its
    Gaussian approximation."""
    rank = len(pool)
    source = x
    activation = None
    if x.origin is not None and x.origin[0].monotone and x.origin[1].offsets is not None:
        activation, source = x.origin
        if x.offsets is None or source.offsets.shape != x.offsets.shape:
            return None
    if source.offsets is None or source.offsets.ndim != rank + 1:
        return None
    shape = source.offsets.shape
    windows = _windows(shape, tuple(pool), tuple(strides), padding)
    flat = windows.reshape(-1, windows.shape[-1])
    present = flat >= 0
    safe = np.where(present, flat, 0)
    d = np.asarray(source.offsets, np.float64).ravel()
    r = np.broadcast_to(source.random_map(), shape).ravel().astype(np.float64)
    means = np.where(present, d[safe], -np.inf)
    if source.covariance is not None:
        cov = np.asarray(source.covariance, np.float64)[safe[:, :, None], safe[:, None, :]]
    else:
        cov = np.zeros((*flat.shape, flat.shape[1]))
        idx = np.arange(flat.shape[1])
        cov[:, idx, idx] = r[safe]
    both = present[:, :, None] & present[:, None, :]
    mean, var = clark_maximum(means, np.where(both, cov, 0.0))
    out = SignalMoments.from_offsets(mean.reshape(windows.shape[:-1]), var.reshape(windows.shape[:-1]))
    if activation is not None:
        out = estimate_activation(out, activation)
    # Covariance between windows: taken as independent, the assumption every
    # estimator makes, so that copies made later (up-sampling) are counted
    # (only on a tensor small enough to carry one: a larger diagonal matrix
    # would be built only to be dropped, 2 GB for a 16x16x64 output).
    if out.offsets.size > COVARIANCE_ELEMENTS:
        return out
    return out.with_covariance(np.diag(np.broadcast_to(out.random_map(), out.offsets.shape).ravel()))


def average_pooling_map(values: np.ndarray, pool: tuple, strides: tuple, padding: str) -> np.ndarray:
    """Average pooling of one example ``(*positions, channels)`` or a batch
    ``(batch, *positions, channels)`` (Keras: padding is not counted)."""
    rank = len(pool)
    return _average_over_windows(
        values, _windows(values.shape[-rank - 1 :], tuple(pool), tuple(strides), padding)
    )


def _average_over_windows(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Mean of each window (``_windows``' indices, -1 not counted) of one
    example or of each example of a batch."""
    present = windows >= 0
    lead = values.ndim - (windows.ndim - 1)  # windows: (*outputs, channels, K)
    flat = values.reshape(*values.shape[:lead], -1)
    summed = np.where(present, flat[..., np.where(present, windows, 0)], 0.0).sum(axis=-1)
    return summed / present.sum(axis=-1)


def estimate_average_pooling_map(
    x: SignalMoments, pool: tuple, strides: tuple, padding: str
) -> SignalMoments | None:
    """Average pooling of a full map of expected values (channels last): the
    map is pooled; element variances are pooled exactly with the covariance
    (``autoinit.estimators.covariance``), else as independent ones
    (``sum r / n^2``). None without a full map."""
    rank = len(pool)
    if x.offsets is None or x.offsets.ndim != rank + 1:
        return None
    d = np.asarray(x.offsets, np.float64)
    windows = _windows(d.shape, tuple(pool), tuple(strides), padding)
    count = (windows >= 0).sum(axis=-1)
    apply = functools.partial(_average_over_windows, windows=windows)
    return linear_map_moments(x, d, apply, lambda random: apply(random) / count)
