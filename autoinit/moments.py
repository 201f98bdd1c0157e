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

When AutoInit has drawn every weight upstream it can do better than the
expectation over weight draws: each element's expected value (over examples)
is a deterministic function of the drawn weights, and with 16-64 channels the
realised spread of those values is far from its expectation (a chi-square
with as many degrees of freedom as channels), an error that compounds along a
residual stream. At the borders of small feature maps the expected values
also depend on the position (taps fall on zero padding). ``offsets`` then
carries that map of expected values itself: shape ``(*positions, channels)``
(one example, no batch axis) or ``(channels,)`` when it is the same at every
position. ``mean`` is its mean, ``shared_var`` the variance of its
per-channel means, and ``var`` adds the position spread and the variance
around the expected value (``random_var``).

``example_shared_var`` is the variance of a per-example, per-channel
component that is constant across the positions (tokens, steps) of one
example: the covariance of two distinct positions of the same example and
channel, averaged over position pairs, less ``shared_var``. Averages over
positions with weights summing to 1 (attention, global average pooling)
pass it whole and shrink only the rest of the random part. It is part of
``random_var`` and 0 unless a rule sets it (see ``with_example_fraction``).

``scale_var`` is the relative variance over examples of a per-example
scale of the random parts, shared by an example's channels and positions:
a squeeze-and-excitation gate or a stochastic-depth mask scales each
example as a whole, and an activation's mean then moves with that scale
(``scale_driven_var``); see ``autoinit.estimators.scale_mixture``.

``covariance`` goes one step further on small tensors (at most
``COVARIANCE_ELEMENTS`` elements per example) once every weight upstream is
drawn: the full covariance of the random parts of one example's elements.
With a fixed draw, the cross terms ``sum_{i != j} w_i w_j Cov(x_i, x_j)``
that average to zero over draws do not vanish: a 3x3 kernel whose taps share
a sign turns neighbouring outputs into strongly correlated ones, and the next
fixed kernel sums them coherently (measured: 2.6x the independent estimate
on a 4-channel module). Linear maps propagate it exactly (``A C A^T``); see
``autoinit.estimators.covariance`` for the rest.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["SignalMoments", "COVARIANCE_ELEMENTS"]

COVARIANCE_ELEMENTS = 1024
"""Largest tensor (elements per example) whose full covariance is tracked:
it costs ``N^2`` floats per tensor and ``N^2`` work per layer or more."""


@dataclass(frozen=True)
class SignalMoments:
    """Mean and variance of one tensor's elements, plus the shared part.

    Args:
        mean: expected value of an element (over examples, positions, units).
        var: variance of an element (over examples, positions, units).
        shared_var: the part of ``var`` that is constant across examples and
            positions within a channel (``0 <= shared_var <= var``).
        origin: see the attribute.
        offsets: see the attribute; prefer :meth:`from_offsets`.
        example_shared_var: see the module docstring
            (``0 <= example_shared_var <= random_var``).

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
    offsets: np.ndarray | None = field(default=None, compare=False, repr=False)
    """Each element's expected value for the drawn weights, ``(*positions,
    channels)`` or ``(channels,)``, read-only; None when unknown. Build with
    :meth:`from_offsets`, which keeps ``mean``/``var``/``shared_var`` consistent."""
    element_var: np.ndarray | None = field(default=None, compare=False, repr=False)
    """With ``offsets``: each element's variance around its expected value when
    it differs between elements (an array broadcastable to ``offsets``), or
    None when it is ``random_var`` everywhere."""
    example_shared_var: float = 0.0
    covariance: np.ndarray | None = field(default=None, compare=False, repr=False)
    """With a full map ``offsets`` of ``N`` elements (every axis of one
    example, never the per-channel form of a larger tensor): the ``(N, N)`` covariance
    of their random parts (C order, like ``offsets.ravel()``), read-only;
    None when unknown. Attach with :meth:`with_covariance`."""
    profile: np.ndarray | None = field(default=None, compare=False, repr=False)
    """With per-channel ``offsets`` of a tensor that had a full map (one too
    large to keep, see ``per_channel``): the relative variance of the random
    parts by position, ``(*positions)``, averaged over channels, mean 1. On a
    map with zero padding, interior positions have more variance (their
    windows are whole) and feed interior outputs that sum more taps; a
    convolution reading this keeps that correlation (uniform otherwise: a
    few percent low per layer, compounding). None when unknown."""
    spread: np.ndarray | None = field(default=None, compare=False, repr=False)
    """With per-channel ``offsets`` reduced from a full map (``per_channel``):
    the part of each channel's random variance that is the spread of the
    map's expected values over positions, ``(channels,)``: the same for every
    example and smooth over positions, so neighbours in a pooling window
    share it (max pooling reads it as shared). None when unknown."""
    source: tuple[SignalMoments, Any] | None = field(default=None, compare=False, repr=False)
    """``(base, activation)`` when this tensor is ``activation(base)``
    elementwise (an ``autoinit.estimators.activations.Activation``), so that
    two functions of one tensor combine as one function of it, not as
    independent tensors (``x * sigmoid(x)``); None when unknown."""
    scale_var: float = 0.0
    """``kappa``: the relative variance over examples of a per-example scale
    ``s`` (mean 1) of the random parts, shared by the example's channels and
    positions (a gate or a dropout mask per example); see
    ``autoinit.estimators.scale_mixture``. 0 unless a rule sets it."""
    scale_driven_var: float = 0.0
    """The part of ``random_var`` that is a function of that scale ``s``
    (constant over one example's positions, so within ``example_shared_var``
    where positions exist): an activation's mean moving with ``s``."""
    weights_overlap: float | None = field(default=None, compare=False, repr=False)
    """For weights that sum to one along the last axis (a softmax's output):
    the mean over pairs of distinct rows of one example of ``sum_k E[a_ik]
    E[a_jk]`` (``estimators.attention.row_overlap``: ``1 / n`` without a
    mask, more under a causal one). A product that contracts that axis with
    values averages them (``estimators.attention.attend``). None otherwise."""

    @classmethod
    def from_offsets(
        cls, offsets: Any, random_var: Any, origin: tuple[Any, SignalMoments] | None = None
    ) -> SignalMoments:
        """Moments of a tensor whose elements have expected values ``offsets``
        (see the attribute) and variances ``random_var`` around them (a number,
        or an array broadcastable to ``offsets``).

        Example:
            >>> x = SignalMoments.from_offsets([1.0, -1.0], 0.5)
            >>> x.mean, x.var, x.shared_var
            (0.0, 1.5, 1.0)
        """
        d = np.asarray(offsets, dtype=np.float64)
        if d.ndim == 0 or d.size == 0:
            raise ValueError(f"offsets must be an array with a channel axis. Received: shape {d.shape}")
        r = np.maximum(np.asarray(random_var, dtype=np.float64), 0.0)
        if r.ndim == 0:
            spread, mean_random = None, float(r)
        else:
            if np.broadcast_shapes(r.shape, d.shape) != d.shape:
                raise ValueError(f"random_var of shape {r.shape} does not broadcast to offsets {d.shape}")
            spread = _stored(r)
            mean_random = float(np.broadcast_to(r, d.shape).mean())
        channel = d.reshape(-1, d.shape[-1]).mean(axis=0)
        shared = float(channel.var())
        return cls(float(d.mean()), float(d.var()) + mean_random, shared, origin, _stored(d), spread)

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
        if self.covariance is not None:
            n = None if self.offsets is None else self.offsets.size
            if n is None or self.covariance.shape != (n, n):
                object.__setattr__(self, "covariance", None)  # no longer describes these elements
        example, driven = float(self.example_shared_var), float(self.scale_driven_var)
        # random_var is a pass over the offsets: read only when a part needs bounding by it.
        random = self.random_var if _positive(example) or _positive(driven) else 0.0
        object.__setattr__(self, "example_shared_var", min(example, random) if _positive(example) else 0.0)
        kappa = float(self.scale_var)
        object.__setattr__(self, "scale_var", kappa if _positive(kappa) else 0.0)
        object.__setattr__(self, "scale_driven_var", min(driven, random) if _positive(driven) else 0.0)

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

    @property
    def random_var(self) -> float:
        """Variance around each element's expected value, averaged over
        elements (``fluctuating_var`` less the position spread of ``offsets``)."""
        if self.offsets is None:
            return self.fluctuating_var
        return max(self.var - _offsets_var(self.offsets), 0.0)

    @property
    def example_fraction(self) -> float:
        """example_shared_var / random_var (0 when random_var is 0)."""
        random = self.random_var
        return self.example_shared_var / random if random > 0 else 0.0

    def with_example_fraction(self, fraction: float) -> SignalMoments:
        """These moments with ``example_shared_var = fraction * random_var``."""
        return replace(self, example_shared_var=max(float(fraction), 0.0) * self.random_var)

    def with_example_fraction_of(self, other: SignalMoments) -> SignalMoments:
        """These moments with ``other``'s per-example fraction of the random
        part, where ``other`` has one (a map that rescales each element
        alike, e.g. per token, keeps it); else these moments as they are."""
        return self.with_example_fraction(other.example_fraction) if other.example_shared_var > 0.0 else self

    @property
    def scale_driven_fraction(self) -> float:
        """scale_driven_var / random_var (0 when random_var is 0)."""
        random = self.random_var
        return self.scale_driven_var / random if random > 0 else 0.0

    def with_scale_of(self, other: SignalMoments, scale_var: float | None = None) -> SignalMoments:
        """These moments with ``other``'s per-example scale (``scale_var``, or
        the one given) and its scale-driven fraction of the random part
        (a map that acts alike on every example keeps both)."""
        kappa = other.scale_var if scale_var is None else scale_var
        if (
            kappa <= 0.0
            and other.scale_driven_var <= 0.0
            and self.scale_var <= 0.0
            and self.scale_driven_var <= 0.0
        ):
            return self
        return replace(self, scale_var=kappa, scale_driven_var=other.scale_driven_fraction * self.random_var)

    def with_covariance(self, covariance: Any) -> SignalMoments:
        """These moments with the random parts' covariance ``covariance``
        (see the attribute), its diagonal set to the element variances this
        object already holds. Unchanged when the tensor has no full map or is
        larger than ``COVARIANCE_ELEMENTS``; covariance dropped when
        ``covariance`` is None or not finite."""
        if self.offsets is None or self.offsets.size > COVARIANCE_ELEMENTS:
            return self
        if covariance is None:
            return replace(self, covariance=None)
        c = np.array(covariance, dtype=np.float64)
        n = self.offsets.size
        if c.shape != (n, n) or not np.all(np.isfinite(c)):
            return replace(self, covariance=None)
        np.fill_diagonal(c, np.broadcast_to(self.random_map(), self.offsets.shape).ravel())
        return replace(self, covariance=_stored(c))

    def random_map(self) -> np.ndarray:
        """Each element's variance around its expected value, broadcastable to
        ``offsets`` (a 0-d array when it is the same everywhere)."""
        if self.element_var is not None:
            return self.element_var
        return np.asarray(self.random_var)

    def offset_map(self, shape: tuple) -> np.ndarray | None:
        """The expected values broadcast to one example's ``shape``, or None.

        Uses ``offsets`` when it fits ``shape`` (same shape, or one value per
        channel), a constant ``mean`` when nothing is shared, else None.
        Unknown (None) dimensions of ``shape`` allow only per-channel values,
        returned as ``(channels,)``.
        """
        if not shape or shape[-1] is None:
            return None
        known = all(d is not None for d in shape)
        if self.offsets is not None:
            if known and self.offsets.shape == tuple(shape):
                return self.offsets
            if self.offsets.shape == (shape[-1],):
                return np.broadcast_to(self.offsets, shape) if known else self.offsets
            return None
        if self.shared_var <= 1e-12 * max(self.var, 1e-300) and math.isfinite(self.mean):
            return np.full(tuple(shape) if known else (shape[-1],), self.mean)
        return None

    def per_channel(self) -> SignalMoments:
        """These moments with ``offsets`` reduced to one value per channel (the
        position spread joins the channel's variance); unchanged without offsets."""
        if self.offsets is None or self.offsets.ndim == 1:
            return self
        channels = self.offsets.shape[-1]
        d = self.offsets.reshape(-1, channels)
        full = np.broadcast_to(self.random_map(), self.offsets.shape)
        r = full.reshape(-1, channels)
        reduced = SignalMoments.from_offsets(d.mean(axis=0), d.var(axis=0) + r.mean(axis=0), self.origin)
        by_position = full.mean(axis=-1)
        level = float(by_position.mean())
        profile = _stored(by_position / level) if level > 0 and np.ptp(by_position) > 1e-9 * level else None
        # The position spread joins the random part but is the same for every
        # example, so the per-example component keeps its absolute size.
        return replace(
            reduced,
            example_shared_var=self.example_shared_var,
            scale_var=self.scale_var,
            scale_driven_var=self.scale_driven_var,
            profile=profile,
            spread=_stored(d.var(axis=0)),
        )

    def with_profile_of(self, other: SignalMoments) -> SignalMoments:
        """These per-channel moments with ``other``'s position ``profile`` (an
        elementwise or per-channel map keeps it, approximately); unchanged
        when either has none or these have a full map."""
        if other.profile is None or self.offsets is None or self.offsets.ndim != 1:
            return self
        return replace(self, profile=other.profile)

    def scaled_by(self, factor: float, of: SignalMoments) -> SignalMoments:
        """These moments with ``of``'s profile and its ``spread`` times
        ``factor`` (``of`` scaled by ``sqrt(factor)``)."""
        out = self.with_profile_of(of)
        if of.spread is None or out.offsets is None or out.offsets.ndim != 1:
            return out
        return replace(out, spread=_stored(np.asarray(of.spread) * factor))


def _positive(value: float) -> bool:
    """``value`` is finite and above zero."""
    return math.isfinite(value) and value > 0.0


_OFFSET_VARS: dict[int, tuple[weakref.ref, float]] = {}


def _offsets_var(offsets: np.ndarray) -> float:
    """``offsets.var()``, kept per array for the read-only maps ``_stored``
    makes (``replace`` passes one map on to many moments; each asks for it)."""
    if offsets.flags.writeable or offsets.base is not None:
        return float(offsets.var())
    key = id(offsets)
    hit = _OFFSET_VARS.get(key)
    if hit is not None and hit[0]() is offsets:
        return hit[1]
    value = float(offsets.var())
    _OFFSET_VARS[key] = (weakref.ref(offsets, lambda _, k=key: _OFFSET_VARS.pop(k, None)), value)
    return value


def _stored(values: np.ndarray) -> np.ndarray:
    """A read-only float32 copy: maps are kept for every tensor of a pass, and
    float32 is ample for statistics that are compared at the percent level."""
    stored = np.array(values, dtype=np.float32)
    stored.setflags(write=False)
    return stored
