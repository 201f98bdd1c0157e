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
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
from scipy import special

from autoinit.estimators.gaussian import expectation_over_density
from autoinit.moments import SignalMoments

__all__ = [
    "estimate_average_pooling",
    "estimate_max_pooling",
    "max_of_normals_density",
    "max_of_normals_moments",
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
    return SignalMoments(x.mean, x.shared_var + e + (x.fluctuating_var - e) / k, x.shared_var, example_shared_var=e)


@lru_cache(maxsize=4096)
def max_of_normals_density(window: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and quadrature weights of ``M_K``, the max of K standard normals."""
    k = max(int(window), 1)
    # The max concentrates near sqrt(2 log K); cover it generously.
    upper = 9.0
    lower = -9.0 if k < 8 else -4.0
    t = np.linspace(lower, upper, 6001)
    log_density = np.log(k) - 0.5 * t * t - 0.5 * np.log(2 * np.pi) + (k - 1) * special.log_ndtr(t)
    w = np.exp(log_density)
    w[1:-1:2] *= 4.0
    w[2:-1:2] *= 2.0
    w /= w.sum()
    return t, w


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
