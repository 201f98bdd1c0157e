"""Covariance of the random parts of one example's elements (small tensors).

AutoInit's mappings assume the elements a unit sums over are independent.
Over random draws of the weights the cross terms cancel on average, but for
the one draw a network actually has, ``Var(sum_i w_i x_i) = w^T C w`` keeps
them, and on narrow layers (4-16 channels, 3x3 taps) they decide the result:
a kernel whose taps share a sign makes neighbouring outputs correlated, and
the next fixed kernel adds them coherently. Once weights are drawn, the
covariance ``C`` of a small tensor is propagated whole (see
``SignalMoments.covariance``):

- a linear map ``A`` (convolutions, dense layers, padding, cropping,
  up-sampling, reshapes): ``A C A^T``, exact (``linear_covariance``);
- an elementwise activation ``f`` of Gaussian elements with expected values
  ``d_i`` and standard deviations ``s_i``: Mehler's expansion
  ``Cov(f(x_i), f(x_j)) = sum_{k>=1} c_k(i) c_k(j) rho_ij^k`` with
  ``c_k(i) = E[f(d_i + s_i Z) He_k(Z)] / sqrt(k!)`` (``activation_covariance``);
- a per-element affine map (batch normalization): ``D C D``;
- independent per-element noise (dropout, Gaussian noise): off-diagonal
  entries unchanged; a mask shared by one channel's positions (spatial
  dropout) scales that channel's pairs (``spatial_dropout_covariance``);
- a sum of inputs treated as independent (Add): the sum of their covariances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from autoinit.moments import COVARIANCE_ELEMENTS, SignalMoments

__all__ = [
    "linear_covariance",
    "linear_variances",
    "linear_output",
    "linear_map_moments",
    "independent_variances",
    "activation_covariance",
    "rescaled_covariance",
    "spatial_dropout_covariance",
    "batched",
]

_HERMITE_TERMS = 12
_HERMITE_NODES = 64


def linear_covariance(
    apply: Callable[[np.ndarray], np.ndarray], covariance: np.ndarray, in_shape: Sequence[int]
) -> np.ndarray:
    """``A C A^T`` for the linear map ``A`` that ``apply`` computes.

    Args:
        apply: maps a batch of one-example arrays ``(B, *in_shape)`` to
            ``(B, *out_shape)``; linear (no bias, no offsets).
        covariance: ``C``, ``(N_in, N_in)`` in C order over ``in_shape``.
        in_shape: one example's input shape.

    Example:
        >>> c = linear_covariance(lambda b: b @ np.array([[1.0], [1.0]]), np.eye(2), (2,))
        >>> c.tolist()
        [[2.0]]
    """
    c = np.asarray(covariance, dtype=np.float64)
    n = c.shape[0]
    diagonal = independent_variances(c)
    if diagonal is not None:  # C = D: A D A^T = S^T S with S = D^(1/2) A^T, one application of A
        root = _root_rows(apply, diagonal, in_shape)
        out = root.T @ root
        return 0.5 * (out + out.T)
    right = np.asarray(apply(c.reshape(n, *in_shape)), dtype=np.float64).reshape(n, -1)  # C A^T
    out = np.asarray(apply(np.ascontiguousarray(right.T).reshape(-1, *in_shape)), dtype=np.float64)
    out = out.reshape(right.shape[1], -1)  # (A C A^T)^T
    return 0.5 * (out + out.T)


def linear_variances(
    apply: Callable[[np.ndarray], np.ndarray], covariance: np.ndarray, in_shape: Sequence[int]
) -> np.ndarray:
    """The diagonal of ``A C A^T`` alone (for outputs too large to keep ``C``):
    ``sum_i A^T[i, j] (C A^T)[i, j]``, flat over the output's elements. Both
    factors are ``apply`` of a batch (the identity's rows, ``C``'s rows; ``C``
    is symmetric), which for a convolution costs far less than the dense
    product ``C @ A^T``. A diagonal ``C = D`` (independent elements) takes
    one application: ``sum_i D_i A[j, i]^2``, the squares of ``D^(1/2) A^T``."""
    c = np.asarray(covariance, dtype=np.float64)
    n = c.shape[0]
    diagonal = independent_variances(c)
    if diagonal is not None:
        root = _root_rows(apply, diagonal, in_shape)
        return np.einsum("ij,ij->j", root, root)
    transposed = np.asarray(apply(np.eye(n).reshape(n, *in_shape)), dtype=np.float64).reshape(n, -1)  # A^T
    right = np.asarray(apply(c.reshape(n, *in_shape)), dtype=np.float64).reshape(n, -1)  # C A^T
    return np.einsum("ij,ij->j", transposed, right)


def independent_variances(covariance: np.ndarray) -> np.ndarray | None:
    """The diagonal of ``covariance`` when it is the whole of it (every
    off-diagonal entry exactly zero, the diagonal non-negative: independent
    elements, e.g. a model input's ``var * I``), else None."""
    c = np.asarray(covariance)
    diagonal = np.diagonal(c)
    if np.count_nonzero(c) != np.count_nonzero(diagonal) or np.any(diagonal < 0.0):
        return None
    return np.array(diagonal, dtype=np.float64)


def _root_rows(
    apply: Callable[[np.ndarray], np.ndarray], diagonal: np.ndarray, in_shape: Sequence[int]
) -> np.ndarray:
    """``D^(1/2) A^T``: ``apply`` of the rows of ``diag(sqrt(diagonal))``, ``(N_in, N_out)``."""
    n = diagonal.size
    rows = np.diag(np.sqrt(diagonal)).reshape(n, *in_shape)
    return np.asarray(apply(rows), dtype=np.float64).reshape(n, -1)


LINEAR_BUDGET = 1 << 24
"""Largest ``N_in * N_out`` for which a linear map's variances are taken from
the covariance (the intermediate ``C A^T`` has that many floats)."""


def linear_output(
    expected: np.ndarray, x: SignalMoments, apply: Callable[[np.ndarray], np.ndarray]
) -> SignalMoments | None:
    """Moments of the linear map ``apply`` of ``x``, which carries its
    covariance: expected values ``expected`` (the map of ``x.offsets``),
    element variances the diagonal of ``A C A^T``, which keeps the cross terms
    the independent sum ``sum w^2 r`` drops. An output too large to carry a
    covariance keeps only that diagonal; None when even that is beyond
    ``LINEAR_BUDGET`` (the caller sums independent variances instead)."""
    if x.covariance is None or x.offsets is None or x.offsets.size * expected.size > LINEAR_BUDGET:
        return None
    if expected.size > COVARIANCE_ELEMENTS:
        variances = linear_variances(apply, x.covariance, x.offsets.shape)
        return SignalMoments.from_offsets(expected, variances.reshape(expected.shape))
    covariance = linear_covariance(apply, x.covariance, x.offsets.shape)
    out = SignalMoments.from_offsets(expected, np.diag(covariance).reshape(expected.shape))
    return out.with_covariance(covariance)


def linear_map_moments(
    x: SignalMoments,
    offsets: np.ndarray,
    apply: Callable[[np.ndarray], np.ndarray],
    apply_squared: Callable[[np.ndarray], np.ndarray],
) -> SignalMoments:
    """Moments of a linear map of ``x`` whose expected values are ``offsets``.

    Args:
        x: the input moments.
        offsets: the input's map of expected values (one example).
        apply: the map ``A`` on one example or a batch of them.
        apply_squared: the map with every weight squared (``A**2``) on one example.

    Expected values ``A d``; element variances the diagonal of ``A C A^T``
    when ``x`` carries the covariance of ``offsets`` (``linear_output``), else
    the independent sums ``A**2 r``.
    """
    expected = apply(offsets)
    if x.covariance is not None and x.offsets is not None and x.offsets.shape == offsets.shape:
        diagonal = independent_variances(x.covariance) if expected.size > COVARIANCE_ELEMENTS else None
        if diagonal is not None:  # diag(A D A^T) = A**2 diag(D): one example, no covariance kept
            return SignalMoments.from_offsets(expected, apply_squared(diagonal.reshape(offsets.shape)))
        y = linear_output(expected, x, apply)
        if y is not None:
            return y
    return SignalMoments.from_offsets(expected, apply_squared(np.broadcast_to(x.random_map(), offsets.shape)))


def batched(transform: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A one-example transform applied to each array of a batch."""
    return lambda batch: np.stack([transform(a) for a in batch])


def activation_covariance(
    fn: Callable[[np.ndarray], np.ndarray],
    offsets: np.ndarray,
    random: np.ndarray,
    covariance: np.ndarray,
    terms: int = _HERMITE_TERMS,
) -> np.ndarray:
    """Covariance of ``f(x)`` for Gaussian ``x`` with expected values
    ``offsets``, element variances ``random`` and covariance ``covariance``
    (Mehler's expansion to ``terms`` terms; the diagonal is left to the caller,
    which has the exact element variances).

    Example:
        >>> c = activation_covariance(lambda x: x, np.zeros(2), np.ones(2), np.array([[1.0, 0.5], [0.5, 1.0]]))
        >>> round(float(c[0, 1]), 6)
        0.5
    """
    d = np.asarray(offsets, dtype=np.float64).ravel()
    s = np.sqrt(np.maximum(np.asarray(random, dtype=np.float64).ravel(), 0.0))
    u, w = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    w = w / w.sum()
    with np.errstate(all="ignore"):
        y = np.asarray(fn(d[:, None] + s[:, None] * u[None, :]), dtype=np.float64)
    y = np.where(np.isfinite(y), y, 0.0)
    hermite = np.polynomial.hermite_e.hermevander(u, terms)  # (nodes, terms + 1)
    norms = np.sqrt([math.factorial(k) for k in range(terms + 1)])
    c = ((y * w) @ hermite / norms)[:, 1:]  # (N, terms): c_k for k >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.asarray(covariance, dtype=np.float64) / np.outer(s, s)
    rho = np.clip(np.where(np.isfinite(rho), rho, 0.0), -1.0, 1.0)
    out = np.zeros_like(rho)
    power = np.ones_like(rho)
    for k in range(terms):
        power *= rho
        out += np.outer(c[:, k], c[:, k]) * power
    return out


def rescaled_covariance(covariance: np.ndarray, random_in: np.ndarray, random_out: np.ndarray) -> np.ndarray:
    """``D C D`` for a per-element affine map whose element variances go from
    ``random_in`` to ``random_out`` (``D = sqrt(random_out / random_in)``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(np.asarray(random_out, np.float64) / np.asarray(random_in, np.float64)).ravel()
    scale = np.where(np.isfinite(scale), scale, 0.0)
    return np.asarray(covariance, dtype=np.float64) * np.outer(scale, scale)


def spatial_dropout_covariance(covariance: np.ndarray, offsets: np.ndarray, rate: float) -> np.ndarray:
    """Covariance after a dropout mask ``m`` shared by each channel's positions
    (``E[m] = 1``, ``E[m^2] = 1 / (1 - rate)``): two elements ``i != j`` of one
    channel get ``(C_ij + rate d_i d_j) / (1 - rate)``; other pairs keep
    ``C_ij``. Channels are the last axis of ``offsets``."""
    d = np.asarray(offsets, dtype=np.float64)
    channel = np.broadcast_to(np.arange(d.shape[-1]), d.shape).ravel()
    same = channel[:, None] == channel[None, :]
    flat = d.ravel()
    c = np.asarray(covariance, dtype=np.float64)
    return np.where(same, (c + rate * np.outer(flat, flat)) / (1.0 - rate), c)
