"""Normalization layers, in training mode (statistics of the current batch).

Paper, Appendix A: BatchNormalization returns ``mu_out = 0``, ``nu_out = 1``.
We keep ``epsilon`` (it matters when signals vanish) and ``gamma = 1``,
``beta = 0`` (their initial values), and say what happens to the shared
per-channel part:

* BatchNormalization standardizes each channel over batch and positions:
  the per-channel offset is removed (``shared_out = 0``).
* Layer/Group normalization standardize each example over a group of ``g``
  channels and ``p`` positions: offsets that differ between the group's
  channels survive, rescaled.
* UnitNormalization divides each vector of ``d`` elements by its L2 norm, so
  ``E[y^2] = 1 / d`` exactly.
* SpectralNormalization divides its layer's kernel ``W`` (reshaped to
  ``(fan_in, units)``) by ``sigma``, Keras' power-iteration estimate of its
  top singular value, at every training call: ``W x / sigma`` has
  ``1 / sigma^2`` times the second moment of ``W x`` whatever scale ``W`` was
  drawn with, so AutoInit cannot set it. ``spectral_norm_estimate`` repeats
  Keras' iteration from the layer's vector ``u`` (the first training call;
  later calls converge to the top singular value).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from autoinit.moments import SignalMoments

__all__ = [
    "BatchRenorm",
    "estimate_batch_normalization",
    "estimate_group_normalization",
    "estimate_layer_normalization",
    "estimate_unit_normalization",
    "spectral_norm_estimate",
]


def estimate_batch_normalization(
    x: SignalMoments,
    epsilon: float = 1e-3,
    *,
    gamma: Any = None,
    beta: Any = None,
    renorm: BatchRenorm | None = None,
) -> SignalMoments:
    """``y = gamma_c (x - E_c[x]) / sqrt(Var_c[x] + eps) + beta_c`` per channel c
    (training mode: statistics of the batch).

    With ``gamma = 1``, ``beta = 0`` (their usual initial values): ``mu_out =
    0``, ``nu_out = f / (f + eps)`` with ``f`` the within-channel (fluctuating)
    variance, ``shared_out = 0``. ``gamma``/``beta`` given per channel make it
    a per-channel affine map of that (``beta``'s spread over channels becomes
    shared variance).

    Batch *re*normalization (``renorm``, Ioffe 2017) multiplies the
    normalized value by ``r = clip(sigma_B / sigma_mov, 1/rmax, rmax)`` and
    adds ``d = clip((mu_B - mu_mov) / sigma_mov, -dmax, dmax)``. Unclipped,
    that is exactly ``(x - mu_mov) / sigma_mov``: the forward pass uses the
    moving statistics (the identity at initialization), nothing is removed.

    When ``x`` carries its map of expected values (``offsets``, channels last),
    every channel's batch statistics come from that map and the result carries
    the normalized map; otherwise channels are alike and the statistics are
    those of an average channel.
    """
    if x.offsets is not None:
        return _batch_norm_from_map(x, epsilon, gamma, beta, renorm)
    within = x.fluctuating_var
    if not math.isfinite(within):
        return SignalMoments(0.0, 1.0, 0.0)
    if gamma is None and beta is None and renorm is None:
        return SignalMoments(0.0, within / (within + epsilon), 0.0)
    g = np.ones(1) if gamma is None else np.asarray(gamma, dtype=np.float64).ravel()
    b = np.zeros(1) if beta is None else np.asarray(beta, dtype=np.float64).ravel()
    if renorm is not None and renorm.unclipped:
        # (x - mu_mov) / sigma_mov: an affine map of everything, offsets included.
        scale = g / renorm.sigma(epsilon)
        shift = b - scale * np.asarray(renorm.mean, dtype=np.float64).ravel()
        return _affine(x.mean, x.var, x.shared_var, scale, shift)
    r, d = (1.0, 0.0) if renorm is None else renorm.correction(x.mean, within, epsilon)
    return _affine(0.0, r * r * within / (within + epsilon), 0.0, g, b + g * d)


@dataclass(frozen=True)
class BatchRenorm:
    """A renormalizing BatchNormalization's renorm statistics (per channel)
    and clipping (``rmin``/``rmax`` bound ``r``, ``dmax`` bounds ``|d|``)."""

    mean: Any
    stddev: Any
    rmin: float = 0.0
    rmax: float = math.inf
    dmax: float = math.inf

    @property
    def unclipped(self) -> bool:
        return self.rmin <= 0.0 and math.isinf(self.rmax) and math.isinf(self.dmax)

    def sigma(self, epsilon: float) -> np.ndarray:
        return np.maximum(np.asarray(self.stddev, dtype=np.float64).ravel(), math.sqrt(epsilon))

    def correction(self, batch_mean: Any, batch_var: Any, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        """``(r, d)`` for batch statistics per channel."""
        sigma = self.sigma(epsilon)
        r = np.clip(np.sqrt(np.asarray(batch_var) + epsilon) / sigma, self.rmin, self.rmax)
        d = np.clip(
            (np.asarray(batch_mean) - np.asarray(self.mean, dtype=np.float64).ravel()) / sigma,
            -self.dmax,
            self.dmax,
        )
        return r, d


def _affine(mean: float, var: float, shared: float, scale: np.ndarray, shift: np.ndarray) -> SignalMoments:
    """Moments of ``scale_c * x + shift_c`` over channels c, for ``x`` with the
    same (mean, var, shared) in every channel."""
    scale, shift = np.broadcast_arrays(
        np.asarray(scale, dtype=np.float64), np.asarray(shift, dtype=np.float64)
    )
    channel_means = scale * mean + shift
    out_mean = float(channel_means.mean())
    second = float(
        np.mean(scale * scale) * (var + mean * mean) + np.mean(2 * scale * shift * mean + shift * shift)
    )
    out_shared = float(channel_means.var() + np.mean(scale * scale) * shared)
    return SignalMoments(out_mean, second - out_mean * out_mean, out_shared)


def _batch_norm_from_map(
    x: SignalMoments, epsilon: float, gamma: Any, beta: Any, renorm: BatchRenorm | None
) -> SignalMoments:
    channels = x.offsets.shape[-1]
    d = x.offsets.reshape(-1, channels).astype(np.float64)
    r = np.broadcast_to(x.random_map(), x.offsets.shape).reshape(-1, channels).astype(np.float64)
    batch_mean = d.mean(axis=0)
    batch_var = d.var(axis=0) + r.mean(axis=0)
    g = np.ones(channels) if gamma is None else np.asarray(gamma, dtype=np.float64).ravel()
    b = np.zeros(channels) if beta is None else np.asarray(beta, dtype=np.float64).ravel()
    if renorm is not None and renorm.unclipped:
        scale = g / renorm.sigma(epsilon)
        shift = b - scale * np.asarray(renorm.mean, dtype=np.float64).ravel()
    else:
        rr, dd = (1.0, 0.0) if renorm is None else renorm.correction(batch_mean, batch_var, epsilon)
        scale = g * rr / np.sqrt(batch_var + epsilon)
        shift = b + g * dd - scale * batch_mean
    offsets = (d * scale + shift).reshape(x.offsets.shape)
    random = (r * scale * scale).reshape(x.offsets.shape)
    return SignalMoments.from_offsets(offsets, random)


def estimate_group_normalization(
    x: SignalMoments, channels_per_group: int, positions: int = 1, epsilon: float = 1e-3
) -> SignalMoments:
    """Standardize each example over ``g`` channels times ``p`` positions.

    The group's mean removes the group average of the channel offsets, so the
    within-group variance is ``v = s (1 - 1/g) + f (1 - 1/(g p))``
    (``s`` shared, ``f`` fluctuating); ``nu_out = v / (v + eps)`` and the
    surviving offsets give ``shared_out = s (1 - 1/g) / (v + eps)``.
    """
    g = max(int(channels_per_group), 1)
    n = g * max(int(positions), 1)
    shared = x.shared_var * (1.0 - 1.0 / g)
    within = shared + x.fluctuating_var * (1.0 - 1.0 / n)
    if not math.isfinite(within):
        return SignalMoments(0.0, 1.0, 0.0)
    return SignalMoments(0.0, within / (within + epsilon), shared / (within + epsilon))


def estimate_layer_normalization(x: SignalMoments, features: int, epsilon: float = 1e-3) -> SignalMoments:
    """LayerNormalization over ``features`` elements: one group of all of them."""
    return estimate_group_normalization(x, features, 1, epsilon)


def estimate_unit_normalization(x: SignalMoments, features: int) -> SignalMoments:
    """``y = x / ||x||`` over ``d`` elements: ``E[y^2] = 1/d``,
    ``mu_out ~= mu_in / sqrt(d E[x^2])``."""
    d = max(int(features), 1)
    second = x.second_moment
    if not second > 0 or not math.isfinite(second):
        return SignalMoments(0.0, 1.0 / d, 0.0)
    mean = x.mean / math.sqrt(d * second)
    return SignalMoments(mean, 1.0 / d - mean * mean, x.shared_var / (d * second))


def spectral_norm_estimate(kernel: np.ndarray, vector_u: np.ndarray, iterations: int = 1) -> float:
    """Keras' ``SpectralNormalization`` estimate of the top singular value of
    ``kernel`` (reshaped to ``(-1, units)``) from its vector ``u`` (``(1, units)``):
    ``iterations`` times ``v = unit(u W^T)``, ``u = unit(v W)``; then
    ``sigma = v W u^T``.

    Example:
        >>> spectral_norm_estimate(np.diag([3.0, 1.0]), np.array([[1.0, 0.0]]))
        3.0
    """
    w = np.asarray(kernel, dtype=np.float64).reshape(-1, np.shape(kernel)[-1])
    u = np.asarray(vector_u, dtype=np.float64).reshape(1, -1)
    v = u @ w.T
    for _ in range(max(int(iterations), 1)):
        v = u @ w.T
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        u = v @ w
        u = u / max(float(np.linalg.norm(u)), 1e-12)
    return float((v @ w @ u.T).item())
