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
"""

from __future__ import annotations

import math

from autoinit.moments import SignalMoments

__all__ = [
    "estimate_batch_normalization",
    "estimate_group_normalization",
    "estimate_layer_normalization",
    "estimate_unit_normalization",
]


def estimate_batch_normalization(x: SignalMoments, epsilon: float = 1e-3) -> SignalMoments:
    """``y = (x - E_c[x]) / sqrt(Var_c[x] + eps)`` per channel c (training mode).

    ``mu_out = 0``, ``nu_out = f / (f + eps)`` with ``f`` the within-channel
    (fluctuating) variance; ``shared_out = 0``.
    """
    within = x.fluctuating_var
    if not math.isfinite(within):
        return SignalMoments(0.0, 1.0, 0.0)
    return SignalMoments(0.0, within / (within + epsilon), 0.0)


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
