"""Gaussian integrals by deterministic quadrature.

Every activation estimate reduces to expectations of ``f(x)`` and ``f(x)**2``
under ``x ~ N(mean, var)`` (paper, Appendix A, eqs. 5-6). We evaluate them with
a composite Simpson rule on a fixed grid in standard-normal space
(``z in [-12, 12]``, 4801 nodes): deterministic, vectorized (one call of ``f``
on an array), and accurate to ~1e-8 relative for smooth ``f`` and ~1e-6 for
functions with kinks such as ReLU. Results are cached per activation and input
moments.

The part of the variance shared by all elements of a channel (see
``autoinit.moments``) needs a two-dimensional integral: with
``x = mean + sqrt(shared) * u + sqrt(fluct) * z`` and ``u, z ~ N(0, 1)``,
the output's shared variance is ``Var_u(E_z[f(x)])``. The outer integral is
over a smooth function (a Gaussian-smoothed ``f``), so Gauss-Hermite nodes do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import lru_cache

import numpy as np

__all__ = [
    "ElementwiseFn",
    "standard_normal_grid",
    "gaussian_moments",
    "gaussian_shared_variance",
    "expectation_over_density",
    "hermite_nodes",
]

ElementwiseFn = Callable[[np.ndarray], np.ndarray]

_Z_LIMIT = 12.0
_Z_NODES = 4801  # odd, for Simpson's rule
_INNER_NODES = 801
_OUTER_NODES = 48


def _simpson_weights(n: int, h: float) -> np.ndarray:
    w = np.ones(n)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w * h / 3.0


@lru_cache(maxsize=8)
def standard_normal_grid(n: int = _Z_NODES, limit: float = _Z_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z`` and weights ``w`` with ``sum(w * g(z)) ~= E[g(Z)]``, Z ~ N(0, 1)."""
    z = np.linspace(-limit, limit, n)
    w = _simpson_weights(n, z[1] - z[0]) * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    w /= w.sum()  # exact for constants
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


@lru_cache(maxsize=2)
def hermite_nodes(n: int = _OUTER_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes ``u`` and weights ``w`` (summing to
    1): ``sum(w * g(u)) ~= E[g(U)]``, U ~ N(0, 1), for smooth ``g``."""
    u, w = np.polynomial.hermite_e.hermegauss(n)
    return u, w / w.sum()


def _evaluate(f: ElementwiseFn, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(f(x), dtype=np.float64)


def _moments_uncached(f: ElementwiseFn, mean: float, var: float) -> tuple[float, float]:
    if not np.isfinite(mean) or not np.isfinite(var):
        return float("nan"), float("nan")
    z, w = standard_normal_grid()
    y = _evaluate(f, mean + np.sqrt(max(var, 0.0)) * z)
    with np.errstate(all="ignore"):
        first = float(np.dot(w, y))
        second = float(np.dot(w, y * y))
    return first, second


def gaussian_moments(
    f: ElementwiseFn, mean: float, var: float, key: Hashable | None = None
) -> tuple[float, float]:
    """``(E[f(x)], E[f(x)^2])`` for ``x ~ N(mean, var)``.

    Args:
        f: elementwise function on float64 NumPy arrays.
        mean, var: the Gaussian's moments.
        key: a hashable identity of ``f`` (e.g. ``("relu",)``); when given,
            results are cached on ``(key, mean, var)``.
    """
    if key is None:
        return _moments_uncached(f, mean, var)
    return _cached_moments(key, _round(mean), _round(var), f)


def gaussian_shared_variance(
    f: ElementwiseFn,
    mean: float,
    var: float,
    shared_var: float,
    key: Hashable | None = None,
) -> float:
    """Shared variance of ``f(x)`` when ``x`` carries ``shared_var`` of its ``var``.

    Returns ``Var_u(E_z[f(mean + sqrt(shared_var) u + sqrt(var - shared_var) z)])``:
    the variance across channels of each channel's mean output.
    """
    if shared_var <= 0.0 or not np.isfinite(var):
        return 0.0 if np.isfinite(var) else float("nan")
    if key is None:
        return _shared_uncached(f, mean, var, shared_var)
    return _cached_shared(key, _round(mean), _round(var), _round(shared_var), f)


def expectation_over_density(
    f: ElementwiseFn,
    offset: float,
    scale: float,
    t: np.ndarray,
    weights: np.ndarray,
    shared_var: float = 0.0,
) -> tuple[float, float, float]:
    """Moments of ``f(offset + sqrt(shared_var) u + scale * T)``.

    ``T`` has the discrete density ``weights`` on nodes ``t`` (weights sum to 1),
    ``u ~ N(0, 1)`` is shared by a whole channel. Returns
    ``(E[f], E[f^2], Var_u(E_T[f]))``. Used for max pooling of activations.
    """
    u, wu = hermite_nodes() if shared_var > 0.0 else (np.zeros(1), np.ones(1))
    x = offset + np.sqrt(max(shared_var, 0.0)) * u[:, None] + scale * t[None, :]
    y = _evaluate(f, x)
    with np.errstate(all="ignore"):
        inner_first = y @ weights
        inner_second = (y * y) @ weights
        first = float(wu @ inner_first)
        second = float(wu @ inner_second)
        shared = float(wu @ (inner_first * inner_first)) - first * first
    return first, second, max(shared, 0.0)


def _round(value: float) -> float:
    # Cache keys: 12 significant digits keep hits for recomputed equal values.
    return float(f"{float(value):.12g}")


_CACHE_LIMIT = 100_000
_moment_cache: dict[tuple, tuple[float, float]] = {}
_shared_cache: dict[tuple, float] = {}


def _cached_moments(key: Hashable, mean: float, var: float, f: ElementwiseFn) -> tuple[float, float]:
    # Keyed on the caller's identity of f, not on f itself: adapters build
    # fresh wrappers around the same activation.
    cache_key = (key, mean, var)
    if cache_key not in _moment_cache:
        if len(_moment_cache) > _CACHE_LIMIT:
            _moment_cache.clear()
        _moment_cache[cache_key] = _moments_uncached(f, mean, var)
    return _moment_cache[cache_key]


def _cached_shared(key: Hashable, mean: float, var: float, shared: float, f: ElementwiseFn) -> float:
    cache_key = (key, mean, var, shared)
    if cache_key not in _shared_cache:
        if len(_shared_cache) > _CACHE_LIMIT:
            _shared_cache.clear()
        _shared_cache[cache_key] = _shared_uncached(f, mean, var, shared)
    return _shared_cache[cache_key]


def _shared_uncached(f: ElementwiseFn, mean: float, var: float, shared_var: float) -> float:
    fluct = max(var - shared_var, 0.0)
    u, wu = hermite_nodes()
    z, wz = standard_normal_grid(_INNER_NODES, 10.0)
    x = mean + np.sqrt(shared_var) * u[:, None] + np.sqrt(fluct) * z[None, :]
    y = _evaluate(f, x)
    with np.errstate(all="ignore"):
        g = y @ wz  # E_z[f] for each u
        first = float(wu @ g)
        shared = float(wu @ (g * g)) - first * first
    return max(shared, 0.0)
