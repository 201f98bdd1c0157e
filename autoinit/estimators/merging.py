"""Merge layers (paper, Appendix A, "Arithmetic Operators" and
"Concatenation Layers"). Inputs are assumed independent of each other.

    Add:        mu = sum mu_i,              nu = sum nu_i
    Subtract:   mu = mu_1 - mu_2,           nu = nu_1 + nu_2
    Average:    mu = (1/N) sum mu_i,        nu = (1/N^2) sum nu_i
    Multiply:   mu = prod mu_i,             nu = prod (nu_i + mu_i^2) - prod mu_i^2
    Concatenate (C_i elements each):
                mu = sum C_i mu_i / sum C_i,
                nu = sum C_i (nu_i + mu_i^2) / sum C_i - mu^2

Add, Subtract and Average are linear: when every input's elements' expected
values are known (``SignalMoments.offsets``), the output's are the same
combination of them, and the variances around them (independent between
inputs) combine as the variances above.

Maximum/Minimum (not in the paper) use Clark's (1961) exact moments of the
maximum of two independent Gaussians, applied pairwise for N > 2. The shared
part: with per-channel offsets ``u_a ~ N(mu_a, s_a)``, ``u_b ~ N(mu_b, s_b)``
and fluctuations of variance ``f_a``, ``f_b`` around them, a channel's
expected maximum is ``m = u_b + g(u_a - u_b)`` with
``g(x) = x Phi(x / t) + t phi(x / t)``, ``t = sqrt(f_a + f_b)`` (Clark's mean
given the offsets), so ``Var(m) = s_b + Var g(x) - 2 s_b E[Phi(x / t)]``
for ``x ~ N(mu_a - mu_b, s_a + s_b)`` (Stein's lemma for the cross term), one
Gauss-Hermite quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from autoinit.estimators.pooling import max_of_normals_moments
from autoinit.moments import SignalMoments

__all__ = [
    "estimate_add",
    "estimate_subtract",
    "estimate_average",
    "estimate_multiply",
    "estimate_concatenate",
    "estimate_maximum",
    "estimate_minimum",
]


def _linear_offsets(xs: Sequence[SignalMoments], coefficients: Sequence[float]) -> SignalMoments | None:
    """``sum a_i x_i`` when every input's offsets are known and broadcastable, else None."""
    offsets = [x.offsets for x in xs]
    if any(d is None for d in offsets):
        return None
    try:
        shape = np.broadcast_shapes(*(d.shape for d in offsets))
    except ValueError:
        return None
    if any(d.shape[-1] != shape[-1] for d in offsets):
        return None
    d = sum(a * o for a, o in zip(coefficients, offsets))
    if np.ndim(d) == 0 or d.shape != shape:
        d = np.broadcast_to(d, shape)
    random = sum(a * a * x.random_map() for a, x in zip(coefficients, xs))
    return SignalMoments.from_offsets(d, random)


def estimate_add(xs: Sequence[SignalMoments]) -> SignalMoments:
    """Sum of independent inputs (eq. 11); shared parts add too."""
    known = _linear_offsets(xs, [1.0] * len(xs))
    if known is not None:
        return known
    return SignalMoments(sum(x.mean for x in xs), sum(x.var for x in xs), sum(x.shared_var for x in xs))


def estimate_subtract(xs: Sequence[SignalMoments]) -> SignalMoments:
    """``x_1 - x_2`` (eq. 13)."""
    a, b = xs[0], xs[1]
    known = _linear_offsets((a, b), (1.0, -1.0))
    if known is not None:
        return known
    return SignalMoments(a.mean - b.mean, a.var + b.var, a.shared_var + b.shared_var)


def estimate_average(xs: Sequence[SignalMoments]) -> SignalMoments:
    """Mean of N independent inputs (eq. 12)."""
    n = len(xs)
    known = _linear_offsets(xs, [1.0 / n] * n)
    if known is not None:
        return known
    total = estimate_add(xs)
    return SignalMoments(total.mean / n, total.var / n**2, total.shared_var / n**2)


def estimate_multiply(xs: Sequence[SignalMoments]) -> SignalMoments:
    """Product of independent inputs (eq. 14).

    The shared part: two elements of one channel have covariance
    ``prod (mu_i^2 + s_i) - prod mu_i^2``.
    """
    mean = math.prod(x.mean for x in xs)
    mean_sq = math.prod(x.mean * x.mean for x in xs)
    second = math.prod(x.second_moment for x in xs)
    cross = math.prod(x.mean * x.mean + x.shared_var for x in xs)
    return SignalMoments(mean, second - mean_sq, cross - mean_sq)


def estimate_concatenate(xs: Sequence[SignalMoments], sizes: Sequence[float]) -> SignalMoments:
    """Concatenation, weighted by each input's element count (eqs. 15-16).

    Channels from different inputs have different means: that spread is
    shared (constant per channel), so it joins ``shared_var``.
    """
    total = float(sum(sizes))
    weights = [c / total for c in sizes]
    mean = sum(w * x.mean for w, x in zip(weights, xs))
    second = sum(w * x.second_moment for w, x in zip(weights, xs))
    shared = sum(w * (x.shared_var + x.mean * x.mean) for w, x in zip(weights, xs)) - mean * mean
    return SignalMoments(mean, second - mean * mean, shared)


def _max_pair(a: SignalMoments, b: SignalMoments) -> SignalMoments:
    theta = math.sqrt(a.var + b.var)
    if theta == 0.0:
        return a if a.mean >= b.mean else b
    alpha = (a.mean - b.mean) / theta
    cdf, cdf_neg = special.ndtr(alpha), special.ndtr(-alpha)
    pdf = math.exp(-0.5 * alpha * alpha) / math.sqrt(2.0 * math.pi)
    mean = a.mean * cdf + b.mean * cdf_neg + theta * pdf
    second = a.second_moment * cdf + b.second_moment * cdf_neg + (a.mean + b.mean) * theta * pdf
    var = second - mean * mean
    return SignalMoments(mean, var, min(_max_shared(a, b), var))


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _max_shared(a: SignalMoments, b: SignalMoments) -> float:
    """Variance over channels of a channel's expected ``max(a, b)`` (module docstring)."""
    s_a, s_b = a.shared_var, b.shared_var
    if s_a + s_b <= 0.0:
        return 0.0
    x = (a.mean - b.mean) + math.sqrt(s_a + s_b) * _NODES
    t = math.sqrt(a.fluctuating_var + b.fluctuating_var)
    if t > 0.0:
        win = special.ndtr(x / t)
        g = x * win + t * np.exp(-0.5 * (x / t) ** 2) / math.sqrt(2.0 * math.pi)
    else:
        win = (x > 0.0).astype(np.float64)
        g = np.maximum(x, 0.0)
    g_mean = float(_WEIGHTS @ g)
    var_g = float(_WEIGHTS @ (g * g)) - g_mean * g_mean
    return max(s_b + var_g - 2.0 * s_b * float(_WEIGHTS @ win), 0.0)


def estimate_maximum(xs: Sequence[SignalMoments]) -> SignalMoments:
    """Elementwise maximum (Clark 1961, pairwise for N > 2).

    N > 2 identically distributed inputs with no shared part (parallel
    branches of one design) are i.i.d. Gaussians: the exact order statistic
    ``mu + sigma M_N`` (``max_of_normals_moments``), where pairwise Clark
    treats each running maximum as Gaussian (2% low on the variance for N = 3).
    """
    first = xs[0]
    identical = all(x.mean == first.mean and x.var == first.var and x.shared_var == 0.0 for x in xs)
    if len(xs) > 2 and identical and first.offsets is None:
        m1, m2 = max_of_normals_moments(len(xs))
        return SignalMoments(first.mean + np.sqrt(first.var) * m1, first.var * (m2 - m1 * m1))
    result = xs[0]
    for x in xs[1:]:
        result = _max_pair(result, x)
    return result


def estimate_minimum(xs: Sequence[SignalMoments]) -> SignalMoments:
    """``min(x_i) = -max(-x_i)``."""
    negated = [SignalMoments(-x.mean, x.var, x.shared_var) for x in xs]
    m = estimate_maximum(negated)
    return SignalMoments(-m.mean, m.var, m.shared_var)
