"""Preprocessing and augmentation layers as they act in training mode.

Per-element affine maps (``Rescaling``, ``Normalization``, arithmetic with a
constant): ``y = a x + b`` with ``a``, ``b`` broadcast over one example,

    E[y] = a E[x] + b,    Var(y) = a^2 Var(x),    Cov(y_i, y_j) = a_i a_j Cov(x_i, x_j),

exact for any input distribution (``estimate_affine``).

Layers that only move pixels (``RandomFlip``, ``RandomCrop``, ``CenterCrop``)
keep every element's distribution; which element lands where depends on the
draw, so only one value per channel is kept (``SignalMoments.per_channel``).

Layers that resample pixels (``Resizing``, ``RandomRotation``, ``RandomZoom``,
``RandomTranslation``) interpolate: an output pixel is ``sum_k w_k x_k`` with
weights summing to 1. The mean and every component constant over an image's
positions (per-channel offsets, per-example parts) pass unchanged; the rest
becomes ``sum_k w_k^2`` times as large when it is independent between pixels
(the assumption here: white noise, as the probe feeds and as AutoInit's input
model states; smooth natural images lose less). Bilinear weights at a
fractional position ``f`` give ``(1 - f)^2 + f^2`` per axis
(``bilinear_variance_factor``); for random geometric transforms ``f`` is
taken as uniform on ``[0, 1)``: ``2/3`` per axis, ``4/9`` per image.

Photometric augmentations clip to their ``value_range`` after the change
(``RandomBrightness``: ``y = clip(x + delta)``, ``delta`` uniform per image;
``RandomContrast``: ``y = clip(c (x - m) + m)``, ``c`` uniform per image, ``m``
the image's channel mean, taken as the channel's expected value: exact up to
``Var(x) / positions``). With ``x`` Gaussian per channel, the moments are
Gaussian integrals of the clipped map, averaged over the uniform draw
(``estimate_clipped_random_affine``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from autoinit.estimators.gaussian import gaussian_moments
from autoinit.moments import SignalMoments

__all__ = [
    "estimate_affine",
    "estimate_normalization",
    "estimate_resampling",
    "bilinear_variance_factor",
    "resize_variance_factor",
    "RANDOM_OFFSET_BILINEAR_FACTOR",
    "estimate_clipped_random_affine",
]

RANDOM_OFFSET_BILINEAR_FACTOR = 2.0 / 3.0
"""``E[(1 - f)^2 + f^2]`` for ``f`` uniform on ``[0, 1)``: one axis of bilinear
interpolation at a random sub-pixel position."""

_DRAW_NODES = 33  # Gauss-Legendre nodes over a uniform per-image draw


def estimate_affine(x: SignalMoments, scale, shift, shape: tuple) -> SignalMoments:
    """Moments of ``y = scale * x + shift`` elementwise.

    Args:
        x: the input moments.
        scale, shift: numbers or arrays broadcastable to one example's ``shape``
            (channels last; a per-channel array has the channel axis last).
        shape: one example's shape (no batch axis); None dimensions allowed
            only when ``scale`` and ``shift`` are scalars or per channel.

    Exact for any input distribution. A map of expected values (and its
    covariance) is carried through; without one, per-channel ``scale`` and
    ``shift`` make per-channel offsets when nothing is shared per channel.

    Example:
        >>> y = estimate_affine(SignalMoments(0.0, 1.0), [2.0, 0.5], [1.0, -1.0], (4, 2))
        >>> y.mean, y.var
        (0.0, 3.125)
    """
    a = _without_leading_ones(np.asarray(scale, dtype=np.float64))
    b = _without_leading_ones(np.asarray(shift, dtype=np.float64))
    if a.ndim == 0 and b.ndim == 0 and x.offsets is None:
        s, t = float(a), float(b)
        y = SignalMoments(s * x.mean + t, s * s * x.var, s * s * x.shared_var)
        return _keep_example(y, x)
    if x.offsets is not None:
        if not _fits(a, b, x.offsets.shape) and x.offsets.ndim > 1:
            x = replace(x.per_channel(), covariance=None)
        offsets = np.asarray(x.offsets, np.float64)
        if _fits(a, b, offsets.shape):
            random = np.broadcast_to(x.random_map(), offsets.shape)
            y = SignalMoments.from_offsets(a * offsets + b, a * a * random)
            if x.covariance is not None:
                d = np.broadcast_to(a, offsets.shape).ravel()
                y = y.with_covariance(np.asarray(x.covariance, np.float64) * d[:, None] * d[None, :])
            return _keep_example(y, x)
        x = SignalMoments(x.mean, x.var, x.shared_var, example_shared_var=x.example_shared_var)
    channels = shape[-1] if shape and shape[-1] is not None else max(a.size, b.size)
    if x.shared_var <= 0.0 and _fits(a, b, (channels,)):
        a_c, b_c = np.broadcast_to(a, (channels,)), np.broadcast_to(b, (channels,))
        return _keep_example(SignalMoments.from_offsets(a_c * x.mean + b_c, a_c * a_c * x.var), x)
    # Unknown per-channel offsets, or maps over positions: element averages.
    expected = np.broadcast_to(a * x.mean + b, np.broadcast_shapes(a.shape, b.shape))
    a2 = float(np.mean(a * a))
    spread = float(np.var(expected))
    y = SignalMoments(float(np.mean(expected)), spread + a2 * x.var, spread + a2 * x.shared_var)
    return _keep_example(y, x)


def _without_leading_ones(values: np.ndarray) -> np.ndarray:
    """Drop leading length-1 axes (a statistic kept with a batch axis)."""
    while values.ndim > 1 and values.shape[0] == 1:
        values = values[0]
    return values


def _fits(a: np.ndarray, b: np.ndarray, shape: tuple) -> bool:
    try:
        return np.broadcast_shapes(a.shape, b.shape, shape) == tuple(shape)
    except ValueError:
        return False


def _keep_example(y: SignalMoments, x: SignalMoments) -> SignalMoments:
    """A per-element affine map keeps the per-example fraction."""
    return y.with_example_fraction_of(x)


def estimate_normalization(
    x: SignalMoments, mean, variance, shape: tuple, invert: bool = False, epsilon: float = 1e-7
) -> SignalMoments:
    """``keras.layers.Normalization`` with fixed statistics ``mean``, ``variance``:
    ``y = (x - mean) / max(sqrt(variance), epsilon)`` (or its inverse,
    ``y = mean + x max(sqrt(variance), epsilon)``), an affine map
    (``estimate_affine``); training mode uses the same statistics."""
    m = np.asarray(mean, dtype=np.float64)
    std = np.maximum(np.sqrt(np.asarray(variance, dtype=np.float64)), epsilon)
    if invert:
        return estimate_affine(x, std, m, shape)
    return estimate_affine(x, 1.0 / std, -m / std, shape)


def bilinear_variance_factor(source: np.ndarray) -> float:
    """``mean_k[(1 - f_k)^2 + f_k^2]`` over output pixels sampling the input
    at coordinates ``source`` (one axis): the variance kept by bilinear
    interpolation of white noise."""
    f = np.asarray(source, dtype=np.float64) % 1.0
    return float(np.mean((1.0 - f) ** 2 + f**2))


def resize_variance_factor(length_in: int, length_out: int) -> float:
    """Bilinear resizing of one axis from ``length_in`` to ``length_out``
    samples (half-pixel centers, as TensorFlow, JAX and PyTorch resize):
    output ``i`` reads input coordinate ``(i + 1/2) length_in / length_out -
    1/2``, clamped to the image."""
    if length_in == length_out:
        return 1.0
    i = np.arange(length_out, dtype=np.float64)
    source = np.clip((i + 0.5) * length_in / length_out - 0.5, 0.0, length_in - 1.0)
    return bilinear_variance_factor(source)


def estimate_resampling(x: SignalMoments, factor: float) -> SignalMoments:
    """An interpolation with weights summing to 1 that keeps ``factor`` of the
    white part of the variance (see the module docstring): the mean, the
    per-channel offsets and the per-example component pass unchanged.

    Example:
        >>> y = estimate_resampling(SignalMoments(1.0, 2.0, 1.0), 0.5)
        >>> y.mean, y.var, y.shared_var
        (1.0, 1.5, 1.0)
    """
    x = x.per_channel()
    kept = x.shared_var + x.example_shared_var
    white = max(x.var - kept, 0.0)
    y = SignalMoments(x.mean, kept + factor * white, x.shared_var, example_shared_var=x.example_shared_var)
    if x.offsets is None:
        return y
    random = np.broadcast_to(x.random_map(), x.offsets.shape)
    example = x.example_shared_var
    shrunk = example + factor * np.maximum(random - example, 0.0)
    out = SignalMoments.from_offsets(x.offsets, shrunk)
    return SignalMoments(
        out.mean,
        out.var,
        out.shared_var,
        offsets=out.offsets,
        element_var=out.element_var,
        example_shared_var=example,
    )


def estimate_clipped_random_affine(
    x: SignalMoments,
    scale_range: tuple[float, float],
    shift_range: tuple[float, float],
    value_range: tuple[float, float],
    around_mean: bool = False,
) -> SignalMoments:
    """``y = clip(c (x - m) + m + delta, low, high)`` with ``c`` uniform on
    ``scale_range`` and ``delta`` uniform on ``shift_range``, one draw per
    image (``m`` the channel's expected value when ``around_mean``, else 0).

    Per channel ``x ~ N(d_c, r_c)`` (the channel's expected value and variance
    around it); the moments are averaged over the draw with Gauss-Legendre
    nodes. What the draw shares over an image, ``Var_draw(E[y | draw])``, is
    the per-example component.

    Example:
        >>> y = estimate_clipped_random_affine(SignalMoments(0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (0.0, 1e9))
        >>> round(y.mean, 4), round(y.var, 4)
        (0.3989, 0.3408)
    """
    low, high = float(value_range[0]), float(value_range[1])
    x = x.per_channel()
    if x.offsets is not None:
        d = np.asarray(x.offsets, np.float64)
        r = np.broadcast_to(x.random_map(), d.shape).astype(np.float64)
    elif x.shared_var <= 0.0:
        d, r = np.array([x.mean]), np.array([x.var])
    else:  # unknown per-channel offsets: integrate them as part of the spread
        d, r = np.array([x.mean]), np.array([x.var])
    nodes, weights = np.polynomial.legendre.leggauss(_DRAW_NODES)
    u = 0.5 * (nodes + 1.0)
    w = 0.5 * weights
    scales = scale_range[0] + (scale_range[1] - scale_range[0]) * u
    shifts = shift_range[0] + (shift_range[1] - shift_range[0]) * u
    scale_nodes, shift_nodes, node_weights = _draw_grid(scales, shifts, w, scale_range, shift_range)

    def clip(v: np.ndarray) -> np.ndarray:
        return np.clip(v, low, high)

    means, seconds, within = [], [], []
    for d_c, r_c in zip(d, r):
        centre = d_c if around_mean else 0.0
        m1 = np.empty(len(scale_nodes))
        m2 = np.empty(len(scale_nodes))
        for k, (c, delta) in enumerate(zip(scale_nodes, shift_nodes)):
            m1[k], m2[k] = gaussian_moments(clip, c * (d_c - centre) + centre + delta, c * c * r_c)
        mean_c = float(np.dot(node_weights, m1))
        means.append(mean_c)
        seconds.append(float(np.dot(node_weights, m2)))
        within.append(float(np.dot(node_weights, (m1 - mean_c) ** 2)))
    means_a = np.asarray(means)
    random = np.maximum(np.asarray(seconds) - means_a**2, 0.0)
    y = SignalMoments.from_offsets(means_a, random)
    example = float(np.mean(within))
    return SignalMoments(
        y.mean, y.var, y.shared_var, offsets=y.offsets, element_var=y.element_var, example_shared_var=example
    )


def _draw_grid(scales, shifts, w, scale_range, shift_range):
    """Nodes over the (scale, shift) draw: one axis when the other is fixed."""
    if scale_range[0] == scale_range[1]:
        return np.full_like(shifts, scale_range[0]), shifts, w
    if shift_range[0] == shift_range[1]:
        return scales, np.full_like(scales, shift_range[0]), w
    s, t = np.meshgrid(scales, shifts, indexing="ij")
    return s.ravel(), t.ravel(), np.outer(w, w).ravel()
