"""Gaussian expectations of activations in closed form, elementwise.

For ``X ~ N(d, s^2)`` (arrays ``d``, ``s`` of one shape) these give
``E[f(X)]`` and ``E[f(X)^2]`` exactly where ``f`` is built from pieces whose
Gaussian integrals are known, instead of the interpolated quadrature tables
of ``autoinit.estimators.activations`` (error ~1e-5 relative, and a table
built per call):

* a polynomial on an interval: with ``Z = (X - d) / s`` and the bounds
  ``a < Z < b`` in its units, ``T_k = E[Z^k; a < Z < b]`` follows
  ``T_0 = Phi(b) - Phi(a)``, ``T_1 = phi(a) - phi(b)``,
  ``T_k = (k - 1) T_{k-2} + a^{k-1} phi(a) - b^{k-1} phi(b)``, and
  ``E[X^k; .] = sum_j C(k, j) d^{k-j} s^j T_j`` (hard sigmoid, hard swish,
  hard tanh, leaky ReLU, sparse sigmoid: piecewise polynomials);
* an exponential below zero: ``E[e^{kX}; X < 0] = exp(k d + k^2 s^2 / 2)
  Phi(-d / s - k s)``, taken in logarithms (ELU, CELU, SELU).

An element with ``s = 0`` is ``f(d)`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from scipy import special

__all__ = [
    "Piece",
    "closed_form_moments",
    "piecewise_polynomial_moments",
    "elu_moments",
]

Piece = tuple[float, float, Sequence[float]]
"""``(lower, upper, coefficients)``: ``f(x) = sum_k c_k x^k`` on ``lower < x < upper``."""

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _density(t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _standard_moments(a: np.ndarray, b: np.ndarray, order: int) -> list[np.ndarray]:
    """``T_k = E[Z^k; a < Z < b]`` for ``k = 0..order``, ``Z ~ N(0, 1)`` (module docstring)."""
    pa, pb = _density(a), _density(b)
    # The interval's mass from the nearer tail: no cancellation far out.
    mass = np.where(a > 0.0, special.ndtr(-a) - special.ndtr(-b), special.ndtr(b) - special.ndtr(a))
    moments = [mass, pa - pb]
    for k in range(2, order + 1):
        with np.errstate(invalid="ignore"):
            edge_a = np.where(np.isfinite(a), a ** (k - 1) * pa, 0.0)
            edge_b = np.where(np.isfinite(b), b ** (k - 1) * pb, 0.0)
        moments.append((k - 1) * moments[k - 2] + edge_a - edge_b)
    return moments[: order + 1]


def _interval_moments(
    d: np.ndarray, s: np.ndarray, lower: float, upper: float, order: int
) -> list[np.ndarray]:
    """``E[X^k; lower < X < upper]`` for ``k = 0..order``, ``X ~ N(d, s^2)``, ``s > 0``."""
    standard = _standard_moments((lower - d) / s, (upper - d) / s, order)
    out = []
    for k in range(order + 1):
        out.append(sum(math.comb(k, j) * d ** (k - j) * s**j * standard[j] for j in range(k + 1)))
    return out


def piecewise_polynomial_moments(
    d: np.ndarray, s: np.ndarray, pieces: Sequence[Piece]
) -> tuple[np.ndarray, np.ndarray]:
    """``(E[f(X)], E[f(X)^2])`` for a piecewise polynomial ``f`` (``pieces``
    covering the line) and ``X ~ N(d, s^2)``, ``s > 0``."""
    first, second = np.zeros(np.shape(d)), np.zeros(np.shape(d))
    for lower, upper, coefficients in pieces:
        c = np.asarray(coefficients, dtype=np.float64)
        squared = np.convolve(c, c)
        m = _interval_moments(d, s, lower, upper, squared.size - 1)
        first = first + sum(ck * m[k] for k, ck in enumerate(c) if ck != 0.0)
        second = second + sum(ck * m[k] for k, ck in enumerate(squared) if ck != 0.0)
    return first, second


def elu_moments(d: np.ndarray, s: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(E[f(X)], E[f(X)^2])`` for ``f(x) = x`` above 0, ``alpha (e^x - 1)``
    below, ``X ~ N(d, s^2)``, ``s > 0``: ``f^2 = x^2`` above 0 and
    ``alpha^2 (e^{2x} - 2 e^x + 1)`` below."""
    a = d / s
    above, below = special.ndtr(a), special.ndtr(-a)
    pa = _density(a)
    with np.errstate(over="ignore"):
        exp1 = np.exp(d + 0.5 * s * s + special.log_ndtr(-a - s))  # E[e^X; X < 0]
        exp2 = np.exp(2.0 * d + 2.0 * s * s + special.log_ndtr(-a - 2.0 * s))  # E[e^{2X}; X < 0]
    first = d * above + s * pa + alpha * (exp1 - below)
    second = (d * d + s * s) * above + d * s * pa + alpha * alpha * (exp2 - 2.0 * exp1 + below)
    return first, second


def _pieces(key: Hashable) -> list[Piece] | None:
    """The pieces of the activation keyed ``key`` (``Activation.key``), when piecewise polynomial."""
    inf = math.inf
    if key == ("hard_sigmoid",):  # clip(x + 3, 0, 6) / 6
        return [(-inf, -3.0, [0.0]), (-3.0, 3.0, [0.5, 1.0 / 6.0]), (3.0, inf, [1.0])]
    if key == ("hard_silu",):  # x clip(x + 3, 0, 6) / 6
        return [(-inf, -3.0, [0.0]), (-3.0, 3.0, [0.0, 0.5, 1.0 / 6.0]), (3.0, inf, [0.0, 1.0])]
    if key == ("hard_tanh",):
        return [(-inf, -1.0, [-1.0]), (-1.0, 1.0, [0.0, 1.0]), (1.0, inf, [1.0])]
    if key == ("sparse_sigmoid",):  # clip((x + 1) / 2, 0, 1)
        return [(-inf, -1.0, [0.0]), (-1.0, 1.0, [0.5, 0.5]), (1.0, inf, [1.0])]
    if key == ("leaky_relu",):
        return [(-inf, 0.0, [0.0, 0.2]), (0.0, inf, [0.0, 1.0])]
    if isinstance(key, tuple) and len(key) == 4 and key[0] == "relu" and key[2] is None and key[3] == 0.0:
        return [(-inf, 0.0, [0.0, float(key[1])]), (0.0, inf, [0.0, 1.0])]  # relu(x, negative_slope)
    return None


def _elu_form(key: Hashable) -> tuple[float, float] | None:
    """``(alpha, scale)`` when ``key`` is ``scale * elu(x, alpha)`` (ELU, CELU with alpha 1, SELU)."""
    if key in (("elu",), ("celu",)):
        return 1.0, 1.0
    if isinstance(key, tuple) and len(key) == 2 and key[0] == "elu":
        return float(key[1]), 1.0
    if key == ("selu",):
        return _SELU_ALPHA, _SELU_SCALE
    return None


def closed_form_moments(
    key: Hashable, fn: Callable[[np.ndarray], np.ndarray], d: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(E[f(X)], E[f(X)^2])`` elementwise for ``X ~ N(d, s^2)`` when the
    activation keyed ``key`` has a closed form here, else None. ``fn`` is
    ``f`` itself, for the elements with ``s = 0`` (``f(d)``)."""
    pieces, elu = _pieces(key), _elu_form(key)
    if pieces is None and elu is None:
        return None
    d = np.asarray(d, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), d.shape)
    random = s > 0.0
    safe = np.where(random, s, 1.0)
    if pieces is not None:
        first, second = piecewise_polynomial_moments(d, safe, pieces)
    else:
        alpha, scale = elu
        first, second = elu_moments(d, safe, alpha)
        first, second = scale * first, scale * scale * second
    if not np.all(random):
        with np.errstate(all="ignore"):
            fixed = np.asarray(fn(d), dtype=np.float64)
        first, second = np.where(random, first, fixed), np.where(random, second, fixed * fixed)
    return first, second
