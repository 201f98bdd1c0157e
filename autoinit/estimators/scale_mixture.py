"""A per-example scale mixture (``SignalMoments.scale_var``).

Some layers scale each example as a whole: a squeeze-and-excitation gate
multiplies every channel of one example by a value computed from that
example, stochastic depth (dropout with one mask per example) keeps or drops
a whole residual branch. Then the variance of one example's elements around
their expected values is ``s_n`` times its average, with ``s_n`` shared by
the example's channels and positions, ``E[s] = 1`` and ``Var(s) = kappa``.
Linear maps and batch normalization keep ``s`` (an affine map per channel,
the same for every example); an activation does not average it away: its
output's mean depends on the scale of its input (swish, GELU, ELU), so each
example's channel means move with ``s`` and global average pooling keeps
them (``SignalMoments.scale_driven_var`` is that part of the per-example
variance). ``s`` is taken as log-normal (``log s ~ N(-v / 2, v)``,
``v = log(1 + kappa)``), integrated by Gauss-Hermite quadrature in ``log s``:
it is the product of one factor per gate and mask met along the way, and a
product of many independent factors is log-normal (the measured per-example
energies of EfficientNet's late blocks are that heavy-tailed: one example
of 64 carries 15-20x the mean).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "scale_nodes",
    "passed_fraction",
    "MixedMoments",
    "mixed_elementwise_moments",
    "gated_scale_var",
    "shared_mask_scale_var",
    "summed_scale_var",
]

_NODES = 10

Moments = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(d, scale) -> (E[f(d + scale z)], E[f(d + scale z)^2])`` elementwise, ``z ~ N(0, 1)``."""


@lru_cache(maxsize=256)
def _nodes(kappa: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    sigma2 = math.log1p(kappa)
    u, w = np.polynomial.hermite_e.hermegauss(n)
    return np.exp(math.sqrt(sigma2) * u - 0.5 * sigma2), w / w.sum()


def scale_nodes(kappa: float, n: int = _NODES) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights (summing to 1) for a log-normal ``s`` with
    mean 1 and variance ``kappa`` (a single node at 1 when ``kappa`` is 0).

    Example:
        >>> s, w = scale_nodes(0.5)
        >>> round(float(w @ s), 6), round(float(w @ s**2 - 1), 6)
        (1.0, 0.5)
    """
    if not (kappa > 0.0 and math.isfinite(kappa)):
        return np.ones(1), np.ones(1)
    s, w = _nodes(float(f"{kappa:.6g}"), n)
    return s.copy(), w.copy()


_HERMITE_TERMS = 40


@lru_cache(maxsize=1)
def _hermite_basis(n: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes, weights, and the normalized Hermite polynomials
    ``He_k(z) / sqrt(k!)``, ``k = 1.._HERMITE_TERMS``, at the nodes."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    basis = np.empty((_HERMITE_TERMS + 1, n))
    basis[0], basis[1] = 1.0, z
    for k in range(1, _HERMITE_TERMS):  # He_{k+1} = z He_k - k He_{k-1}, normalized by sqrt((k+1)!)
        basis[k + 1] = (z * basis[k] - math.sqrt(k) * basis[k - 1]) / math.sqrt(k + 1)
    return z, w / w.sum(), basis[1:]


def passed_fraction(
    fn: Callable[[np.ndarray], np.ndarray], mean: float, var: float, fraction: float
) -> float:
    """``Cov(f(a), f(b)) / Var f(a)`` for ``a, b ~ N(mean, var)`` with
    correlation ``fraction``: the share of ``f``'s variance that a component
    shared by two positions of one example carries through ``f``. By Mehler's
    expansion ``sum_k c_k^2 fraction^k / sum_k c_k^2`` (``c_k`` the Hermite
    coefficients of ``f``); at most ``fraction``, exactly that for linear ``f``.

    Example:
        >>> round(passed_fraction(lambda x: 2.0 * x, 0.0, 1.0, 0.3), 6)
        0.3
    """
    rho = min(max(float(fraction), 0.0), 1.0)
    if rho in (0.0, 1.0) or not (var > 0.0 and math.isfinite(var)):
        return rho
    z, w, basis = _hermite_basis()
    with np.errstate(all="ignore"):
        y = np.asarray(fn(mean + math.sqrt(var) * z), dtype=np.float64)
    total = float(w @ (y * y)) - float(w @ y) ** 2
    if not (total > 0.0 and math.isfinite(total)):
        return rho
    c2 = (basis @ (w * y)) ** 2
    powers = rho ** np.arange(1, _HERMITE_TERMS + 1)
    rest = max(total - float(c2.sum()), 0.0) * rho ** (_HERMITE_TERMS + 1)  # the tail, bounded
    return min(float(powers @ c2 + rest) / total, rho)


class MixedMoments:
    """Elementwise ``f`` of elements ``N(d, r s)`` with ``s`` the example's scale.

    Attributes (arrays of ``d``'s shape unless said):
        mean: ``E[f]``.
        var: ``Var f`` (over examples and positions).
        within: ``E_s[Var(f | s)]``, the part of ``var`` at a fixed scale.
        driven: ``Var_s(E[f | s])``, the part that moves with the scale (the
            same at every position of one example).
        scale_var: the output's ``kappa`` (a number): the relative variance over
            ``s`` of its summed conditional variance (``sum Var(f | s)``).
    """

    def __init__(self, moments: Moments, d: np.ndarray, r: np.ndarray, kappa: float) -> None:
        d = np.asarray(d, dtype=np.float64)
        r = np.broadcast_to(np.maximum(np.asarray(r, dtype=np.float64), 0.0), d.shape)
        s, w = scale_nodes(kappa)
        first, second = moments(np.repeat(d[..., None], s.size, axis=-1), np.sqrt(r[..., None] * s))
        conditional = np.maximum(second - first * first, 0.0)
        self.mean = first @ w
        self.within = conditional @ w
        self.driven = np.maximum((first * first) @ w - self.mean * self.mean, 0.0)
        self.var = self.within + self.driven
        energy = conditional.reshape(-1, s.size).sum(axis=0)
        total = float(w @ energy)
        self.scale_var = max(float(w @ (energy * energy)) / (total * total) - 1.0, 0.0) if total > 0 else 0.0


def mixed_elementwise_moments(moments: Moments, d: np.ndarray, r: np.ndarray, kappa: float) -> MixedMoments:
    """``MixedMoments`` of ``f`` (given by its Gaussian ``moments``) on
    elements ``N(d, r s)``, ``s`` log-normal with mean 1 and variance ``kappa``.

    Example (ReLU is positively homogeneous: its mean follows ``E[sqrt(s)]``):
        >>> from scipy import special
        >>> def relu(d, scale):
        ...     a = d / scale
        ...     pdf = np.exp(-a * a / 2) / np.sqrt(2 * np.pi)
        ...     return d * special.ndtr(a) + scale * pdf, (d * d + scale * scale) * special.ndtr(a) + d * scale * pdf
        >>> y = mixed_elementwise_moments(relu, np.zeros(1), np.ones(1), 0.0)
        >>> round(float(y.mean[0]), 4), round(float(y.driven[0]), 4)
        (0.3989, 0.0)
    """
    return MixedMoments(moments, d, r, kappa)


def gated_scale_var(
    kappa: float,
    gate: Callable[[np.ndarray], np.ndarray],
    offsets: np.ndarray,
    var: np.ndarray,
    driven_fraction: float,
    weights: np.ndarray | None = None,
    nodes: int = 24,
) -> float:
    """``kappa`` of ``x * g`` for a gate ``g = gate(h)`` broadcast over the
    positions of each example and channel (squeeze-and-excitation).

    ``h`` has, per channel, expected value ``offsets`` and variance over
    examples ``var``, of which ``driven_fraction`` moves with ``x``'s scale
    ``s`` (through the gate's pooled input): channel by channel with its own
    sign, linearly in ``s``, so that given ``s`` the channels' ``h`` spread by
    ``var (f (s - 1)^2 / kappa + 1 - f)``. Each example's output is scaled by
    ``s B(s)``, ``B(s)`` the ``weights``-average over channels of
    ``E[g^2 | s]``; the rest of the gates' variation, independent per
    channel, averages out over many channels.

    Example (a gate that does not depend on the scale keeps it):
        >>> from scipy import special
        >>> round(gated_scale_var(0.3, special.expit, np.zeros(8), np.ones(8), 0.0), 6)
        0.3
    """
    if not (kappa > 0.0 and math.isfinite(kappa)):
        return 0.0
    h = np.asarray(offsets, dtype=np.float64).ravel()
    v = np.broadcast_to(np.maximum(np.asarray(var, dtype=np.float64), 0.0), np.shape(offsets)).ravel()
    c = np.ones_like(h) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), h.shape)
    if c.sum() <= 0.0:
        return kappa
    s, w = scale_nodes(kappa)
    f = min(max(float(driven_fraction), 0.0), 1.0)
    spread = v[None, :] * (f * (s[:, None] - 1.0) ** 2 / kappa + 1.0 - f)  # (scales, channels)
    u, wu = np.polynomial.hermite_e.hermegauss(nodes)
    wu = wu / wu.sum()
    with np.errstate(all="ignore"):
        g = np.asarray(gate(h[None, :, None] + np.sqrt(spread)[..., None] * u), dtype=np.float64)
    energy = (g * g) @ wu  # E[g^2 | s] per channel
    b = energy @ c / c.sum()
    scaled = s * b
    mean = float(w @ scaled)
    if not (mean > 0.0 and math.isfinite(mean)):
        return kappa
    return max(float(w @ (scaled * scaled)) / (mean * mean) - 1.0, 0.0)


def shared_mask_scale_var(kappa: float, rate: float) -> float:
    """``kappa`` after dropout with one mask per example (stochastic depth):
    ``s' = b s / (1 - rate)``, ``b ~ Bernoulli(1 - rate)``, so
    ``E[s'^2] = (1 + kappa) / (1 - rate)``.

    Example:
        >>> round(shared_mask_scale_var(0.0, 0.2), 6)
        0.25
    """
    if not 0.0 < rate < 1.0:
        return kappa
    return (1.0 + kappa) / (1.0 - rate) - 1.0


def summed_scale_var(variances: Sequence[float], kappas: Sequence[float]) -> float:
    """``kappa`` of a sum of tensors whose scales move together (comonotone:
    branches computed from one example): relative standard deviations add,
    weighted by each input's variance.

    Example:
        >>> round(summed_scale_var([1.0, 1.0], [0.36, 0.0]), 6)
        0.09
    """
    total = float(sum(variances))
    if total <= 0.0:
        return 0.0
    sigma = sum(v * math.sqrt(max(k, 0.0)) for v, k in zip(variances, kappas)) / total
    return sigma * sigma
