"""The signal statistics AutoInit propagates through a network.

The paper's mapping is ``g_layer: (mean_in, var_in) -> (mean_out, var_out)``.
We carry one more number, ``shared_var``, because the paper's independence
assumption breaks in a way that matters: with one fixed draw of the weights, a
non-zero input mean becomes a constant offset per output channel. That offset
is the same at every position and for every example, so averaging over
positions (pooling) cannot remove it, while batch normalization removes it
completely. ``shared_var`` is the variance of those per-channel offsets around
the global mean, i.e. the covariance between two elements of the same channel
at different positions or examples. ``var - shared_var`` is the part that
fluctuates and averages away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SignalMoments"]


@dataclass(frozen=True)
class SignalMoments:
    """Mean and variance of one tensor's elements, plus the shared part.

    Args:
        mean: expected value of an element (over examples, positions, units).
        var: variance of an element (over examples, positions, units).
        shared_var: the part of ``var`` that is constant across examples and
            positions within a channel (``0 <= shared_var <= var``).
        origin: see the attribute.

    Example:
        >>> x = SignalMoments(mean=0.0, var=1.0)
        >>> x.second_moment
        1.0
    """

    mean: float
    var: float
    shared_var: float = 0.0
    origin: tuple[Any, SignalMoments] | None = field(default=None, compare=False, repr=False)
    """``(activation, pre_activation_moments)`` when this tensor is a
    non-decreasing elementwise activation of a Gaussian (lets max pooling be
    exact); None otherwise."""

    def __post_init__(self) -> None:
        var = float(self.var)
        shared = float(self.shared_var)
        if not math.isnan(var):
            # Clamp rounding noise so that 0 <= shared_var <= var always holds.
            var = max(var, 0.0)
            shared = min(max(shared, 0.0), var) if not math.isnan(shared) else 0.0
        object.__setattr__(self, "mean", float(self.mean))
        object.__setattr__(self, "var", var)
        object.__setattr__(self, "shared_var", shared)

    @property
    def second_moment(self) -> float:
        """E[x^2] = mean^2 + var."""
        return self.mean * self.mean + self.var

    @property
    def fluctuating_var(self) -> float:
        """The part of the variance that differs between positions/examples."""
        return max(self.var - self.shared_var, 0.0)

    @property
    def shared_fraction(self) -> float:
        """shared_var / var (0 when var is 0)."""
        return self.shared_var / self.var if self.var > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "shared_var": self.shared_var}
