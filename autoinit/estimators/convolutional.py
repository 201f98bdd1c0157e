"""Convolutions: the dense mapping with an effective fan-in.

A convolution is a dense layer with sparse connectivity (paper, Appendix A):
``nu_out = fan_in Var(W) (nu_in + mu_in^2)`` where ``fan_in`` counts the inputs
one output sums over. At the borders of a ``"same"``-padded input some kernel
taps fall on padding and contribute nothing, so we use the exact average
number of in-bounds taps over all output positions (it matters on small
feature maps: a 3x3 kernel on 4x4 inputs averages 6.25 taps, not 9). For
transposed convolutions each output receives about ``kernel / stride`` taps;
again the exact average is counted.

With the kernel drawn and the input's expected values known
(``SignalMoments.offsets``, a ``(*positions, channels)`` map),
``estimate_conv_realised`` gives the output's exactly: at output position
``p``, channel ``o``, ``D[p, o] = sum_{t in-bounds at p} sum_c W[t, c, o] d[p + t, c]``,
i.e. the convolution of the map. Near the borders of small maps these values
depend on the position, and a smooth map passes coherently through the next
kernel; both matter on 8x8 maps. Grouped convolutions (``groups > 1``) sum
only over their group's input channels; a depthwise convolution is the
grouped one with one input channel per group (its ``(*k, in, multiplier)``
kernel read as ``(*k, 1, in * multiplier)``, Keras' channel order); a
separable convolution is a depthwise one followed by a 1x1 convolution. A
transposed convolution scatters each input position through the kernel:
``D[i s + t d - pad, o] += sum_c W[t, o, c] d[i, c]`` (``convolve_transpose_map``).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from autoinit.errors import EstimationError
from autoinit.estimators.covariance import linear_map_moments
from autoinit.moments import SignalMoments

__all__ = [
    "conv_output_length",
    "padding_geometry",
    "average_taps_1d",
    "average_taps",
    "average_transpose_taps",
    "tap_mask_1d",
    "estimate_conv_realised",
    "estimate_conv_transpose_realised",
    "convolve_map",
    "convolve_constant_map",
    "conv_pair_covariance",
    "convolve_transpose_map",
    "depthwise_as_grouped",
]


def conv_output_length(length: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Output length of a convolution (Keras semantics)."""
    span = (kernel - 1) * dilation + 1
    if padding == "same":
        return -(-length // stride)
    if padding == "causal":
        return -(-length // stride)
    return max((length - span) // stride + 1, 0)


def tap_mask_1d(
    length: int | None, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> np.ndarray:
    """Boolean ``(outputs, kernel)``: which taps of each output land inside the input.

    ``length=None`` (unknown) or ``"valid"`` padding: one row, all taps inside.
    """
    if length is None or padding == "valid":
        return np.ones((1, kernel), dtype=bool)
    out_len = conv_output_length(length, kernel, stride, padding, dilation)
    if out_len == 0:
        return np.ones((1, kernel), dtype=bool)
    span = (kernel - 1) * dilation + 1
    if padding == "causal":
        pad_before = span - 1
    else:  # "same": TF pads the total deficit, the smaller half first
        total = max((out_len - 1) * stride + span - length, 0)
        pad_before = total // 2
    starts = np.arange(out_len) * stride - pad_before
    taps = starts[:, None] + np.arange(kernel)[None, :] * dilation
    return (taps >= 0) & (taps < length)


def average_taps_1d(
    length: int | None, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> float:
    """Mean number of kernel taps that land inside the input, over outputs.

    ``length=None`` (unknown) assumes no border effect (``kernel`` taps).
    """
    return float(tap_mask_1d(length, kernel, stride, padding, dilation).sum(axis=1).mean())


def average_taps(
    spatial: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> float:
    """Product over spatial axes of ``average_taps_1d`` (axes are independent)."""
    return _over_axes(average_taps_1d, spatial, kernel, strides, padding, dilation)


def _over_axes(per_axis, spatial, kernel, strides, padding: str, dilation) -> float:
    """Product over spatial axes of a one-axis tap count (axes are independent)."""
    return math.prod(per_axis(n, k, s, padding, d) for n, k, s, d in zip(spatial, kernel, strides, dilation))


def padding_geometry(
    length: int, kernel: int, stride: int, padding: str, dilation: int = 1
) -> tuple[int, int, int]:
    """``(pad_before, pad_after, out_len)`` of one axis of a convolution or
    pooling window (TF's rule for "same")."""
    span = (kernel - 1) * dilation + 1
    out_len = conv_output_length(length, kernel, stride, padding, dilation)
    if padding == "causal":
        before = span - 1
    elif padding == "same":
        before = max((out_len - 1) * stride + span - length, 0) // 2
    else:
        before = 0
    after = max((out_len - 1) * stride + span - before - length, 0)
    return before, after, out_len


def _grouped_product(values: np.ndarray, kernel: np.ndarray, groups: int) -> np.ndarray:
    """``values (..., in) x kernel (in / groups, out)`` with each group of
    ``out / groups`` outputs reading only its own ``in / groups`` inputs."""
    if groups == 1:
        return values @ kernel
    per_in, out = kernel.shape
    grouped = values.reshape(*values.shape[:-1], groups, per_in)
    weights = kernel.reshape(per_in, groups, out // groups)
    return np.einsum("...gi,igo->...go", grouped, weights).reshape(*values.shape[:-1], out)


def _check_groups(values: np.ndarray, kernel: np.ndarray, groups: int) -> None:
    if groups < 1 or kernel.shape[-1] % groups or values.shape[-1] != kernel.shape[-2] * groups:
        raise EstimationError(
            f"Expected {groups} group(s) of a kernel {kernel.shape} over {values.shape[-1]} input channels "
            f"(in = kernel.shape[-2] * groups, out divisible by groups). Received: values shape {values.shape}"
        )


def convolve_map(
    values: np.ndarray,
    kernel: np.ndarray,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """Convolve one example ``values`` of shape ``(*positions, in)`` with
    ``kernel`` ``(*kernel_size, in / groups, out)`` (Keras semantics, no bias).

    ``values`` of shape ``(in,)`` means the same at every position of an
    unknown-size input: the result is the interior response ``(out,)``.
    ``(batch, *positions, in)`` convolves each example of a batch.
    """
    rank = kernel.ndim - 2
    _check_groups(values, kernel, groups)
    if values.ndim == 1:
        return _grouped_product(
            values, kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0), groups
        )
    lead = values.ndim - rank - 1  # 1 for a batch
    geometry = [
        padding_geometry(n, k, s, padding, d)
        for n, k, s, d in zip(values.shape[lead : lead + rank], kernel.shape[:rank], strides, dilation)
    ]
    padded = np.pad(values, [(0, 0)] * lead + [(b, a) for b, a, _ in geometry] + [(0, 0)])
    outs = [o for _, _, o in geometry]
    windows = [
        (slice(None),) * lead
        + tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(tap, dilation, outs, strides))
        for tap in itertools.product(*(range(k) for k in kernel.shape[:rank]))
    ]
    lead_shape = (*values.shape[:lead], *outs)
    channels = values.shape[-1]
    if 0 in outs:
        return np.zeros((*lead_shape, kernel.shape[-1]))
    columns_size = math.prod(lead_shape) * len(windows) * channels
    if groups == 1 and columns_size <= max(_COLUMN_ELEMENTS, math.prod(lead_shape) * kernel.shape[-1]):
        # One matrix product over (positions, taps x in): the windows side by side.
        columns = np.stack([padded[window] for window in windows], axis=-2)
        product = columns.reshape(-1, len(windows) * channels) @ kernel.reshape(-1, kernel.shape[-1])
        return product.reshape(*lead_shape, kernel.shape[-1])
    result = np.zeros((*lead_shape, kernel.shape[-1]))
    flat = result.reshape(-1, kernel.shape[-1])
    for tap, window in zip(itertools.product(*(range(k) for k in kernel.shape[:rank])), windows):
        # A contiguous (positions, in) copy of the window: one BLAS product per tap.
        flat += _grouped_product(
            np.ascontiguousarray(padded[window]).reshape(-1, channels), kernel[tap], groups
        )
    return result


_COLUMN_ELEMENTS = 1 << 22
"""Largest ``positions x taps x in`` array ``convolve_map`` builds to convolve
with one matrix product, unless the output is larger (else one product per tap)."""


def convolve_constant_map(
    channel_values: np.ndarray,
    kernel: np.ndarray,
    spatial: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """``convolve_map`` of an input that is ``channel_values`` ``(in,)`` at
    every position of a map of ``spatial`` size, without building it.

    Output ``p`` sums the per-tap responses ``v_t = values @ W[t]`` over the
    taps in bounds at ``p``, and a tap is in bounds when it is on every axis:
    ``out[p] = sum_t prod_a m_a[p_a, t_a] v_t`` with the one-axis masks
    ``tap_mask_1d``, one small contraction per axis instead of a convolution
    of the whole map.
    """
    result = _per_tap_responses(channel_values, kernel, groups)
    for axis, (n, k, st, d) in enumerate(zip(spatial, result.shape[:-1], strides, dilation)):
        mask = tap_mask_1d(n, k, st, padding, d).astype(np.float64)
        mask = np.broadcast_to(mask, (conv_output_length(n, k, st, padding, d), k))
        # Contract this axis' taps into its output positions (kept in place).
        result = np.moveaxis(np.tensordot(mask, result, axes=([1], [axis])), 0, axis)
    return result


def convolve_profiled_map(
    profile: np.ndarray,
    channel_values: np.ndarray,
    kernel: np.ndarray,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
    groups: int = 1,
) -> np.ndarray:
    """``convolve_map`` of an input that is ``profile[p] * channel_values[c]``
    (``SignalMoments.profile``), without building it: per tap the channel
    contraction ``v_t = values @ W[t]``, then one single-channel convolution
    of the profile with those per-tap responses."""
    single = _per_tap_responses(channel_values, kernel, groups)[..., None, :]  # one input channel
    return convolve_map(np.asarray(profile, dtype=np.float64)[..., None], single, strides, padding, dilation)


def _per_tap_responses(channel_values: np.ndarray, kernel: np.ndarray, groups: int) -> np.ndarray:
    """``v_t = values @ W[t]`` for every tap ``t`` of ``kernel``: ``(*kernel_size, out)``."""
    w = np.asarray(kernel, dtype=np.float64)
    values = np.asarray(channel_values, dtype=np.float64)
    _check_groups(values, w, groups)
    taps = w.reshape(-1, w.shape[-2], w.shape[-1])
    if groups == 1:
        return (values @ taps).reshape(*w.shape[:-2], -1)
    per_in, out = w.shape[-2], w.shape[-1]
    grouped = taps.reshape(-1, per_in, groups, out // groups)  # every tap at once, per group
    responses = np.einsum("gi,tigo->tgo", values.reshape(groups, per_in), grouped)
    return responses.reshape(*w.shape[:-2], out)


_PAIR_COVARIANCE_ELEMENTS = 1 << 22
"""Largest ``positions x in x out`` for which ``conv_pair_covariance`` is
taken (0.0 beyond). It once bounded an array of that size; the sum in tap
space no longer builds one, but the bound is kept so results stay as they were
(it matters on small maps)."""


def conv_pair_covariance(
    kernel: np.ndarray,
    random_var: np.ndarray,
    spatial: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
    groups: int = 1,
) -> float:
    """Covariance of two distinct output positions of one example, averaged
    over position pairs and output channels, that a drawn ``kernel`` makes
    from input fluctuations independent between positions (variances
    ``random_var``, broadcastable to ``(*spatial, in)``).

    Outputs whose windows overlap share inputs: ``Cov(z_p, z_q) = sum_c r_c
    sum_t W[t] W[t + q - p]``. Summed over all pairs, ``Var(sum_p z_p) =
    sum_{i,c} r_{i,c} A_{i,c}^2`` with ``A_i = sum_{t: i - t is an output}
    W[t]`` (the weight input ``i`` carries into the sum of the outputs);
    less the diagonal ``sum_p Var(z_p)``, over ``P (P - 1)`` pairs. On a 4x4
    map under a 5x5 kernel nearly every output reads every input, and the
    spatial mean keeps most of the variance instead of ``1 / P`` of it.
    With ``R[i, t] = 1`` when input ``i`` is tap ``t`` of some output, the
    sum is taken in tap space: ``sum_{t,u} W[t] G_c[t, u] W[u]`` with
    ``G_c = sum_i r_{i,c} R[i, t] R[i, u]`` (``taps x taps`` per channel,
    built one spatial axis at a time), whose ``t = u`` terms are the
    diagonal, so the pairs are its ``t != u`` terms. 0.0 when there is one
    output position or ``positions x in x out`` exceeds
    ``_PAIR_COVARIANCE_ELEMENTS``.
    """
    w = np.asarray(kernel, dtype=np.float64)
    rank = w.ndim - 2
    sizes = w.shape[:rank]
    per_in, out = w.shape[-2], w.shape[-1]
    if all(k == 1 for k in sizes):
        return 0.0  # 1x1 windows never share an input
    geometry = [
        padding_geometry(n, k, st, padding, d) for n, k, st, d in zip(spatial, sizes, strides, dilation)
    ]
    positions_out = math.prod(o for _, _, o in geometry)
    if positions_out < 2 or math.prod(spatial) * per_in * out > _PAIR_COVARIANCE_ELEMENTS:
        return 0.0
    reaches = []
    for (before, _, outs), n, k, st, d in zip(geometry, spatial, sizes, strides, dilation):
        reach = np.zeros((n, k))  # reach[i, t]: input i is tap t of some output
        for t in range(k):
            i = np.arange(outs) * st - before + t * d
            reach[i[(i >= 0) & (i < n)], t] = 1.0
        reaches.append(reach)
    channels, taps = per_in * groups, math.prod(sizes)
    r = np.asarray(random_var, np.float64)
    if r.ndim <= 1:
        return _pairs_per_channel(w, np.broadcast_to(r, (channels,)), reaches, groups) / (
            positions_out * (positions_out - 1)
        )
    gram = _tap_gram(r, reaches, tuple(spatial), channels)
    per_out = out // groups
    wg = w.reshape(taps, per_in, groups, per_out).transpose(2, 1, 0, 3)  # (group, in, tap, out)
    pairs = gram.reshape(groups, per_in, taps, taps) * (1.0 - np.eye(taps))  # t != u only
    return float(np.mean(np.sum(wg * (pairs @ wg), axis=(1, 2)))) / (positions_out * (positions_out - 1))


def _spatial_gram(reaches: list[np.ndarray]) -> np.ndarray:
    """``R^T R`` (taps x taps, C order) for ``R[i, t] = prod_a reach_a[i_a, t_a]``:
    the Kronecker product of the axes' ``reach_a^T reach_a``."""
    gram = np.ones((1, 1))
    for reach in reaches:
        gram = np.kron(gram, reach.T @ reach)
    return gram


def _pairs_per_channel(w: np.ndarray, r: np.ndarray, reaches: list[np.ndarray], groups: int) -> float:
    """``conv_pair_covariance``'s sum over pairs (before dividing by them) for
    variances ``r`` the same at every position (one per input channel):
    ``G_c = r_c S`` with ``S = R^T R``, so the sum is ``(1 / out) sum_{c, o}
    r_c w_{c,o}^T S' w_{c,o}`` (``S'``: ``S`` without its diagonal, ``w_{c,o}``
    the taps from input ``c`` to output ``o``), one product with ``S'`` for
    every kernel column instead of a ``taps x taps`` matrix per channel."""
    taps, per_in, out = math.prod(w.shape[:-2]), w.shape[-2], w.shape[-1]
    off = _spatial_gram(reaches) * (1.0 - np.eye(taps))
    flat = w.reshape(taps, per_in * out)
    quadratic = np.einsum("tk,tk->k", off @ flat, flat).reshape(per_in, out)
    group_of_output = np.arange(out) // (out // groups)
    weights = r.reshape(groups, per_in)[group_of_output].T  # (per_in, out): r of each output's inputs
    return float(np.sum(quadratic * weights)) / out


def _tap_gram(r: np.ndarray, reaches: list[np.ndarray], spatial: tuple, channels: int) -> np.ndarray:
    """``G[c, t, u] = sum_i r[i, c] R[i, t] R[i, u]`` with ``R[i, t] =
    prod_a reach_a[i_a, t_a]`` (taps in C order), ``(channels, taps, taps)``."""
    if r.ndim <= 1:  # the same at every position: G_c = r_c (R^T R), R^T R a Kronecker product
        return np.broadcast_to(r, (channels,))[:, None, None] * _spatial_gram(reaches)[None]
    g = np.broadcast_to(r, (*spatial, channels))
    for reach in reaches:  # contract the leading spatial axis into (t_a, u_a) pairs
        pairs = (reach[:, :, None] * reach[:, None, :]).reshape(reach.shape[0], -1)
        g = np.tensordot(g, pairs, axes=([0], [0]))
    sizes = [reach.shape[1] for reach in reaches]
    g = g.reshape(channels, *(k for k in sizes for _ in range(2)))  # (c, t1, u1, t2, u2, ...)
    order = [0, *(1 + 2 * a for a in range(len(sizes))), *(2 + 2 * a for a in range(len(sizes)))]
    taps = math.prod(sizes)
    return g.transpose(order).reshape(channels, taps, taps)


def _constant_over_positions(values: np.ndarray, shape: tuple) -> np.ndarray | None:
    """``values`` (broadcastable to one example's ``shape``) as one value per
    channel when they do not vary over positions, else None."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim <= 1:
        return np.broadcast_to(a, shape[-1:])
    if a.shape != tuple(shape):
        a = np.broadcast_to(a, shape)
    first = a.reshape(-1, shape[-1])[0]
    if all(step == 0 for step in a.strides[:-1]) or np.array_equal(a, np.broadcast_to(first, shape)):
        return first
    return None


def depthwise_as_grouped(kernel: np.ndarray) -> np.ndarray:
    """A depthwise kernel ``(*k, in, multiplier)`` as a grouped one
    ``(*k, 1, in * multiplier)`` with ``groups = in`` (output channel
    ``c * multiplier + m``, as Keras orders them)."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def estimate_conv_realised(
    kernel: np.ndarray,
    x: SignalMoments,
    offsets: np.ndarray,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
    groups: int = 1,
) -> SignalMoments:
    """Moments of a convolution's output for the drawn ``kernel`` (bias zero).

    Args:
        kernel: ``(*kernel_size, in_channels / groups, out_channels)``.
        x: the input moments (its ``random_map()`` is used).
        offsets: the input's expected values, ``(*positions, in_channels)``
            (or ``(in_channels,)`` for an input of unknown size).
        strides, padding, dilation, groups: the layer's.

    The output's expected values are ``convolve_map(offsets, kernel)``; the
    variances around them are ``convolve_map(r_in, kernel ** 2)``, i.e.
    ``sum_{t in-bounds at p} sum_c W[t, c, o]^2 r_in[p + t, c]`` (independent
    fluctuations; cross terms vanish in expectation over the draw). Interior
    outputs sum more taps and see interior inputs, which themselves sum more
    taps: a per-position variance map keeps that correlation. When ``x``
    carries its covariance the cross terms are kept instead: the diagonal of
    ``A C A^T`` (``linear_map_moments``).
    """
    w = np.asarray(kernel, dtype=np.float64)
    rank = w.ndim - 2
    if rank < 1 or w.shape[-2] * groups != offsets.shape[-1] or offsets.ndim not in (1, rank + 1):
        raise EstimationError(
            f"Expected a (*kernel_size, in / {groups}, out) kernel matching offsets of shape {offsets.shape}. "
            f"Received: kernel shape {w.shape}"
        )
    if offsets.ndim == rank + 1 and x.covariance is None:
        # Constant over positions (a per-channel map broadcast): the border
        # pattern alone, one contraction per axis (same result, no big map).
        d = _constant_over_positions(offsets, offsets.shape)
        r = _constant_over_positions(x.random_map(), offsets.shape) if d is not None else None
        if r is not None:
            constant = functools.partial(
                convolve_constant_map,
                spatial=offsets.shape[:-1],
                strides=strides,
                padding=padding,
                dilation=dilation,
                groups=groups,
            )
            profile = x.profile if x.profile is not None and x.profile.shape == offsets.shape[:-1] else None
            random = (
                constant(r, w * w)
                if profile is None
                else convolve_profiled_map(profile, r, w * w, strides, padding, dilation, groups)
            )
            return _with_pair_covariance(
                SignalMoments.from_offsets(constant(d, w), random),
                x,
                w,
                offsets.shape,
                strides,
                padding,
                dilation,
                groups,
            )
    apply = functools.partial(
        convolve_map, strides=strides, padding=padding, dilation=dilation, groups=groups
    )
    y = linear_map_moments(
        x, offsets, functools.partial(apply, kernel=w), functools.partial(apply, kernel=w * w)
    )
    if x.covariance is not None or offsets.ndim != rank + 1:
        return y  # the covariance carries the pairs itself
    return _with_pair_covariance(y, x, w, offsets.shape, strides, padding, dilation, groups)


def _with_pair_covariance(y, x, w, shape, strides, padding, dilation, groups) -> SignalMoments:
    """``y`` with the per-example component its kernel makes from the
    input's position-independent fluctuations (``conv_pair_covariance``);
    the input's own per-example component is added by the caller."""
    random = _constant_over_positions(x.random_map(), shape)
    random = np.broadcast_to(x.random_map(), shape) if random is None else random
    white = random * (1.0 - x.example_fraction)
    pairs = conv_pair_covariance(w, white, shape[:-1], strides, padding, dilation, groups)
    return replace(y, example_shared_var=pairs) if pairs > 0.0 else y


def _transpose_geometry(
    length: int, kernel: int, stride: int, padding: str, dilation: int
) -> tuple[int, int]:
    """``(pad_before, out_len)`` of one axis of a transposed convolution (Keras, no output_padding)."""
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        return 0, length * stride + max(span - stride, 0)
    return max(span - stride, 0) // 2, length * stride


def convolve_transpose_map(
    values: np.ndarray,
    kernel: np.ndarray,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> np.ndarray:
    """Transposed convolution of one example ``values`` ``(*positions, in)``
    with ``kernel`` ``(*kernel_size, out, in)`` (Keras semantics, no bias,
    no ``output_padding``); ``(batch, *positions, in)`` does each example."""
    rank = kernel.ndim - 2
    if values.ndim not in (rank + 1, rank + 2) or values.shape[-1] != kernel.shape[-1]:
        raise EstimationError(
            f"Expected values (*positions, {kernel.shape[-1]}) of rank {rank + 1} for a transposed kernel "
            f"{kernel.shape}. Received: values shape {values.shape}"
        )
    lead = values.ndim - rank - 1
    spatial = values.shape[lead : lead + rank]
    geometry = [
        _transpose_geometry(n, k, s, padding, d)
        for n, k, s, d in zip(spatial, kernel.shape[:rank], strides, dilation)
    ]
    # Scatter into a buffer holding every written position, then crop.
    full = [
        max((n - 1) * s + (k - 1) * d + 1, before + out)
        for n, k, s, d, (before, out) in zip(spatial, kernel.shape[:rank], strides, dilation, geometry)
    ]
    buffer = np.zeros((*values.shape[:lead], *full, kernel.shape[-2]))
    for tap in itertools.product(*(range(k) for k in kernel.shape[:rank])):
        window = (slice(None),) * lead + tuple(
            slice(t * d, t * d + (n - 1) * s + 1, s) for t, d, n, s in zip(tap, dilation, spatial, strides)
        )
        buffer[window] += values @ kernel[tap].T
    crop = (slice(None),) * lead + tuple(slice(before, before + out) for before, out in geometry)
    return buffer[crop]


def estimate_conv_transpose_realised(
    kernel: np.ndarray,
    x: SignalMoments,
    offsets: np.ndarray,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> SignalMoments:
    """Moments of a transposed convolution's output for the drawn ``kernel``
    ``(*kernel_size, out, in)`` and the input's map ``offsets``
    ``(*positions, in)`` (bias zero): expected values
    ``convolve_transpose_map(offsets, W)``, variances around them
    ``convolve_transpose_map(r_in, W ** 2)`` (or, with ``x``'s covariance,
    the diagonal of ``A C A^T``: ``linear_map_moments``)."""
    w = np.asarray(kernel, dtype=np.float64)
    if offsets.ndim != w.ndim - 1:
        raise EstimationError(
            f"Expected an expected-value map with positions for a transposed kernel {w.shape}. "
            f"Received: offsets shape {offsets.shape}"
        )
    apply = functools.partial(convolve_transpose_map, strides=strides, padding=padding, dilation=dilation)
    return linear_map_moments(
        x, offsets, functools.partial(apply, kernel=w), functools.partial(apply, kernel=w * w)
    )


def average_transpose_taps_1d(
    length: int | None, kernel: int, stride: int, padding: str, dilation: int = 1
) -> float:
    """Mean number of (input, tap) pairs that write each output of a transposed conv."""
    if length is None:
        return kernel / stride
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        out_len = length * stride + max(span - stride, 0)
        pad_before = 0
    else:  # "same"
        out_len = length * stride
        total = max(span - stride, 0)
        pad_before = total // 2
    counts = np.zeros(out_len + span + stride)
    for i in range(length):
        for k in range(kernel):
            pos = i * stride + k * dilation - pad_before
            if 0 <= pos < out_len:
                counts[pos] += 1
    return float(counts[:out_len].mean()) if out_len else kernel / stride


def average_transpose_taps(
    spatial: Sequence[int | None],
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> float:
    """Product over spatial axes of ``average_transpose_taps_1d``."""
    return _over_axes(average_transpose_taps_1d, spatial, kernel, strides, padding, dilation)
