"""Dropout and noise layers, in training mode (as the paper's analysis assumes).

Paper, Appendix A, "Dropout Layers": Keras' Dropout scales kept values by
``1 / (1 - rate)``. The paper gives ``nu_out = nu_in / (1 - rate)``, which holds
only for a zero-mean input; exactly, with ``b ~ Bernoulli(1 - rate)``:

    mu_out = mu_in,   E[y^2] = E[x^2] / (1 - rate).

SpatialDropout1D/2D/3D in Keras 3 drop whole feature maps and rescale the same
way, so the per-element moments are identical. Masks are independent across
examples and elements, so the shared (per-channel) variance is unchanged.
"""

from __future__ import annotations

from autoinit.moments import SignalMoments

__all__ = [
    "estimate_dropout",
    "estimate_gaussian_dropout",
    "estimate_gaussian_noise",
    "estimate_alpha_dropout",
    "ALPHA_DROPOUT_NEGATIVE",
]

# -selu_scale * selu_alpha: the value AlphaDropout sets dropped units to.
ALPHA_DROPOUT_NEGATIVE = -1.7580993408473766


def estimate_dropout(x: SignalMoments, rate: float) -> SignalMoments:
    """Inverted dropout: ``mu_out = mu_in``, ``E[y^2] = E[x^2] / (1 - rate)``."""
    if rate <= 0.0:
        return x
    if rate >= 1.0:
        return SignalMoments(0.0, 0.0, 0.0)
    second = x.second_moment / (1.0 - rate)
    if x.offsets is not None:  # per element: E[y] = d, E[y^2] = E[x^2] / (1 - rate)
        d2 = x.offsets * x.offsets
        return SignalMoments.from_offsets(x.offsets, (d2 + x.random_map()) / (1.0 - rate) - d2)
    return SignalMoments(x.mean, second - x.mean * x.mean, x.shared_var)


def estimate_gaussian_dropout(x: SignalMoments, rate: float) -> SignalMoments:
    """``y = x n``, ``n ~ N(1, rate / (1 - rate))``: same moments as dropout."""
    return estimate_dropout(x, rate)


def estimate_gaussian_noise(x: SignalMoments, stddev: float) -> SignalMoments:
    """``y = x + e``, ``e ~ N(0, stddev^2)`` independent per element."""
    if x.offsets is not None:
        return SignalMoments.from_offsets(x.offsets, x.random_map() + stddev * stddev)
    return SignalMoments(x.mean, x.var + stddev * stddev, x.shared_var)


def estimate_alpha_dropout(x: SignalMoments, rate: float) -> SignalMoments:
    """AlphaDropout: ``y = a (x b + alpha' (1 - b)) + c`` (Klambauer et al. 2017).

    ``a = ((1 - r)(1 + r alpha'^2))^(-1/2)`` and ``c = -a alpha' r`` so that a
    SELU-normalized input keeps mean 0 and variance 1. Exact moments:
    ``mu_out = a (1 - r) mu_in`` and
    ``E[y^2] = a^2 E[z^2] + 2 a c E[z] + c^2`` with
    ``z = x b + alpha' (1 - b)``.
    """
    if rate <= 0.0:
        return x
    r = rate
    alpha = ALPHA_DROPOUT_NEGATIVE
    a = ((1.0 - r) * (1.0 + r * alpha * alpha)) ** -0.5
    c = -a * alpha * r
    ez = (1.0 - r) * x.mean + r * alpha
    ez2 = (1.0 - r) * x.second_moment + r * alpha * alpha
    mean = a * ez + c
    second = a * a * ez2 + 2.0 * a * c * ez + c * c
    # Both the kept fraction and the shared offset scale by a (1 - r).
    shared = (a * (1.0 - r)) ** 2 * x.shared_var
    return SignalMoments(mean, second - mean * mean, shared)
