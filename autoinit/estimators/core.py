"""Dense-like layers (Dense, EinsumDense, Embedding, Rescaling, Identity).

Paper, Appendix A, "Convolution and Dense Layers": for ``y = W x + b`` with
``W`` zero-mean and independent of ``x``,

    mu_out = E[W] mu_in = 0,    nu_out = fan_in Var(W) (nu_in + mu_in^2),

so ``Var(W) = target / (fan_in (nu_in + mu_in^2))`` gives ``nu_out = target``
(eq. 3). ``fan_in`` is the number of inputs each output sums over (for
convolutions the *average* number of in-bounds taps, see ``convolutional``).
With one fixed draw of ``W`` the input's mean and shared variance become a
per-unit constant offset: the shared part of the output is
``fan_in Var(W) (mu_in^2 + shared_in)``.

That is an expectation over weight draws. Once ``W`` is drawn, and the input's
expected values ``d`` are known (``SignalMoments.offsets``, last axis = input
units), the output's are exactly ``d_out = d W`` and the variance around them
``r_out = r_in W^2`` (per element; ``W^2`` elementwise) (fluctuations independent across input
units; cross terms vanish in expectation): ``estimate_dense_realised``.
"""

from __future__ import annotations

import numpy as np

from autoinit.errors import EstimationError
from autoinit.estimators.covariance import linear_map_moments
from autoinit.moments import SignalMoments

__all__ = [
    "dense_weight_variance",
    "estimate_dense",
    "estimate_dense_realised",
    "estimate_einsum_realised",
    "estimate_embedding",
    "estimate_rescaling",
    "estimate_identity",
]


def dense_weight_variance(x: SignalMoments, fan_in: float, target: float = 1.0) -> float:
    """``Var(W)`` that makes ``W x`` have variance ``target`` (eq. 3).

    Example:
        >>> dense_weight_variance(SignalMoments(0.0, 2.0), fan_in=100)
        0.005
    """
    if fan_in <= 0:
        raise EstimationError(f"fan_in must be positive. Received: fan_in={fan_in}")
    second = x.second_moment
    if not second > 0.0 or second == float("inf"):
        # A dead (all-zero) or overflowed input: no scale can fix it; fall
        # back to the scale for unit second moment rather than dividing by 0.
        second = 1.0
    return target / (fan_in * second)


def estimate_dense(x: SignalMoments, fan_in: float, weight_var: float) -> SignalMoments:
    """Moments of ``W x`` (bias zero) for zero-mean ``W`` with ``Var(W) = weight_var``."""
    gain = fan_in * weight_var
    return SignalMoments(
        0.0,
        gain * x.second_moment,
        gain * (x.mean * x.mean + x.shared_var),
    )


def estimate_dense_realised(kernel: np.ndarray, x: SignalMoments, offsets: np.ndarray) -> SignalMoments:
    """Moments of ``x W`` (bias zero) for the drawn ``kernel`` of shape (in, out).

    Args:
        kernel: the drawn weights, ``(in_units, out_units)``.
        x: the input moments (its ``random_map()`` is used).
        offsets: the input's expected values, last axis ``in_units``.

    ``d_out = d_in W`` and ``r_out = r_in W^2`` (elementwise square), or
    with the input's covariance ``C`` (positions x units, C order) the
    diagonal of ``A C A^T`` (see ``autoinit.estimators.covariance``).
    """
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != offsets.shape[-1]:
        raise EstimationError(
            f"Expected a (in, out) kernel with in = {offsets.shape[-1]}. Received: shape {w.shape}"
        )
    return linear_map_moments(
        x,
        offsets,
        lambda values: _position_wise(values, w),
        lambda values: _position_wise(values, w, squared=True),
    )


def _position_wise(values: np.ndarray, w: np.ndarray, squared: bool = False) -> np.ndarray:
    """``values (..., in) @ w (in, out)`` (or ``@ w**2``) as one BLAS product
    over the rows (a broadcast or strided ``values`` would take NumPy's slow
    loop); values the same in every row (a per-channel map, broadcast or
    filled) are multiplied once (copied to a contiguous row first: a stride-0
    row, a scalar broadcast, would also take the slow loop)."""
    a = np.asarray(values)
    if a.ndim > 1 and a.size:
        first = a[(0,) * (a.ndim - 1)]
        if all(step == 0 for step in a.strides[:-1]) or np.array_equal(a, np.broadcast_to(first, a.shape)):
            row = np.ascontiguousarray(first, dtype=np.float64)
            return np.broadcast_to(_product(row, w, squared), (*a.shape[:-1], w.shape[-1]))
    a = a.astype(np.float64, copy=False)
    rows = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
    return _product(rows, w, squared).reshape(*a.shape[:-1], w.shape[-1])


_SQUARE_ROWS = 256
"""Kernel rows squared at a time by ``_product`` (a block stays in cache)."""


def _product(rows: np.ndarray, w: np.ndarray, squared: bool) -> np.ndarray:
    """``rows @ w``, or ``rows @ w**2`` summed over blocks of ``_SQUARE_ROWS``
    input units, each block squared just before its product (no squared copy
    of a large kernel: a read of ``w`` instead of a write and two reads)."""
    if not squared:
        return rows @ w
    out = rows[..., :_SQUARE_ROWS] @ np.square(w[:_SQUARE_ROWS])
    for start in range(_SQUARE_ROWS, w.shape[0], _SQUARE_ROWS):
        out += rows[..., start : start + _SQUARE_ROWS] @ np.square(w[start : start + _SQUARE_ROWS])
    return out


def estimate_einsum_realised(
    kernel: np.ndarray, x: SignalMoments, offsets: np.ndarray, equation: str
) -> SignalMoments:
    """Moments of ``einsum(equation, x, W)`` (EinsumDense, bias zero) for the
    drawn ``kernel``: ``d_out = einsum(d_in, W)``, ``r_out = einsum(r_in, W^2)``.

    Args:
        kernel: the drawn weights.
        x: the input moments (its ``random_map()`` is used).
        offsets: the input's expected values for one example (every axis but
            the batch axis).
        equation: the layer's ``"in,kernel->out"``; the batch axis must lead
            both ``in`` and ``out``.
    """
    w = np.asarray(kernel, dtype=np.float64)
    lhs, rest = equation.replace(" ", "").split(",")
    out = rest.split("->")[1]
    leading = lhs.startswith("...") and out.startswith("...")
    if not leading and lhs[:1] != out[:1]:
        raise EstimationError(
            f"Expected an einsum equation whose batch axis leads input and output. Received: {equation!r}"
        )
    d = np.asarray(offsets, dtype=np.float64)[None]
    r = np.broadcast_to(x.random_map(), offsets.shape)[None]
    expected = np.einsum(equation, d, w)[0]
    random = np.einsum(equation, r, w * w)[0]
    return SignalMoments.from_offsets(expected, random)


def estimate_embedding(weight_var: float) -> SignalMoments:
    """An embedding lookup returns rows of ``W``: ``mu = 0``, ``nu = Var(W)``.

    Different tokens read different rows, so nothing is shared per channel.
    """
    return SignalMoments(0.0, weight_var, 0.0)


def estimate_rescaling(x: SignalMoments, scale: float, offset: float) -> SignalMoments:
    """``y = scale * x + offset``."""
    s2 = scale * scale
    return SignalMoments(scale * x.mean + offset, s2 * x.var, s2 * x.shared_var)


def estimate_identity(x: SignalMoments) -> SignalMoments:
    """Layers that move or copy elements without changing their distribution."""
    return x
