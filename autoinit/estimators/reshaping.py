"""Shape layers and zero padding (paper, Appendix A, "Padding Layers" and
"Shape Adjustment Layers").

Flatten, Reshape, Permute, RepeatVector, UpSampling, Cropping and Identity move
or copy elements: ``mu_out = mu_in``, ``nu_out = nu_in``.

ZeroPadding adds a fraction ``z = (padded - original) / padded`` of zeros. The
paper gives ``nu_out = nu_in (1 - z)``, which is exact only for zero-mean
input; exactly:

    mu_out = (1 - z) mu_in,   E[y^2] = (1 - z) E[x^2].
"""

from __future__ import annotations

from autoinit.moments import SignalMoments

__all__ = ["estimate_zero_padding", "padded_fraction"]


def padded_fraction(original_size: int, padded_size: int) -> float:
    """``z = (padded - original) / padded``."""
    return (padded_size - original_size) / padded_size if padded_size else 0.0


def estimate_zero_padding(x: SignalMoments, fraction: float) -> SignalMoments:
    """A fraction ``z`` of the output elements are zeros."""
    keep = 1.0 - fraction
    mean = keep * x.mean
    second = keep * x.second_moment
    # Two elements of a channel are both real with probability keep^2.
    shared = keep * keep * (x.shared_var + x.mean * x.mean) - mean * mean
    return SignalMoments(mean, second - mean * mean, shared)
