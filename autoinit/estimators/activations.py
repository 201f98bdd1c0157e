"""Activation functions: Gaussian integrals of any elementwise ``f``.

Paper, Appendix A, eqs. (5)-(6): for ``x ~ N(mu_in, nu_in)``

    mu_out = E[f(x)],    nu_out = E[f(x)^2] - mu_out^2,

computed here by quadrature (``autoinit.estimators.gaussian``) for every Keras 3
activation by name and for any Python callable. Assumption: the activation's
input is Gaussian, which holds for the output of a weighted layer whose fan-in
is large (central limit theorem). When the input's elements' expected values
are known (``SignalMoments.offsets``) each element is its own Gaussian.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from autoinit.estimators.closed_forms import closed_form_moments
from autoinit.estimators.covariance import activation_covariance
from autoinit.estimators.gaussian import (
    ElementwiseFn,
    gaussian_moments,
    gaussian_shared_variance,
    standard_normal_grid,
)
from autoinit.estimators.scale_mixture import mixed_elementwise_moments, passed_fraction, scale_nodes
from autoinit.moments import SignalMoments

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "activation_by_name",
    "relu_family",
    "elu_family",
    "estimate_activation",
    "estimate_activation_mixed",
    "element_moments",
    "estimate_softmax",
    "estimate_glu",
    "composed",
    "affine_of",
    "combined",
    "SELU_ALPHA",
    "SELU_SCALE",
]

_PER_CHANNEL_NODES = 801  # odd (Simpson); quadrature nodes per tabulated offset
_TABLE_SIZE = 257  # offsets tabulated for interpolation (error ~1e-5 relative)
_SCALE_TABLE_SIZE = 17  # element standard deviations tabulated
_WIDE_SCALES = 33  # log-spaced scales tabulated under a scale mixture (10 scales per element)
_WIDE_NODES = 201  # quadrature nodes per entry there (Simpson, h = 0.1)
_TABLE_BLOCK_ELEMENTS = 1 << 18  # function values evaluated at once (bounds the tables' arrays)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@dataclass(frozen=True)
class Activation:
    """An elementwise activation for the estimators.

    Args:
        key: hashable identity used for caching, e.g. ``("relu", 0.0, None, 0.0)``.
        fn: the function on float64 NumPy arrays.
        monotone: True if ``fn`` is non-decreasing (lets max pooling use
            ``max(f(x_i)) = f(max(x_i))``).
    """

    key: Hashable
    fn: ElementwiseFn
    monotone: bool = False

    @property
    def is_linear(self) -> bool:
        return self.key == ("linear",)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, scipy's ``expit`` formula, with NumPy's
    vectorized ``exp`` (about 3x faster on large tables; equal to ``expit``
    within a few ulp)."""
    y = np.negative(x, dtype=np.float64)
    if not isinstance(y, np.ndarray) or y.ndim == 0:
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(y))
    with np.errstate(over="ignore"):
        np.exp(y, out=y)  # in place: a second large array costs more than the exp (page faults)
    y += 1.0
    return np.reciprocal(y, out=y)


def _silu(x: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)``, the product written into the sigmoid's array."""
    y = _sigmoid(x)
    if not isinstance(y, np.ndarray) or y.ndim == 0:
        return x * y
    y *= x
    return y


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _elu(alpha: float) -> ElementwiseFn:
    return lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _gelu_exact(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0)))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _shrink_hard(t: float) -> ElementwiseFn:
    return lambda x: np.where(np.abs(x) > t, x, 0.0)


def _shrink_soft(t: float) -> ElementwiseFn:
    return lambda x: np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def _sparse_plus(x: np.ndarray) -> np.ndarray:
    return np.where(x <= -1.0, 0.0, np.where(x >= 1.0, x, 0.25 * (x + 1.0) ** 2))


def relu_family(
    negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> Activation:
    """Keras' ``relu(x, negative_slope, max_value, threshold)`` (and ReLU layer).

    ``x`` above ``threshold`` passes (clipped at ``max_value``); below it,
    ``negative_slope * (x - threshold)``.
    """

    def fn(x: np.ndarray) -> np.ndarray:
        y = np.where(x > threshold, x, 0.0) if threshold != 0.0 else np.maximum(x, 0.0)
        if max_value is not None:  # Keras clips to [0, max_value]
            y = np.clip(y, 0.0, max_value)
        if negative_slope != 0.0:
            y = y + negative_slope * np.minimum(x - threshold, 0.0)
        return y

    key = ("relu", float(negative_slope), None if max_value is None else float(max_value), float(threshold))
    if key == ("relu", 0.0, None, 0.0):
        key = ("relu",)
    return Activation(key, fn, monotone=negative_slope >= 0.0 and threshold == 0.0)


def elu_family(alpha: float = 1.0) -> Activation:
    """Keras' ``elu(x, alpha)`` (and ELU layer): ``x`` above 0, else
    ``alpha * (exp(x) - 1)``."""
    key = ("elu",) if alpha == 1.0 else ("elu", float(alpha))
    return Activation(key, _elu(alpha), monotone=alpha >= 0)


def _named(name: str, fn: ElementwiseFn, monotone: bool) -> Activation:
    return Activation((name,), fn, monotone)


ACTIVATIONS: dict[str, Activation] = {
    "linear": _named("linear", lambda x: x, True),
    "relu": relu_family(),
    "relu6": Activation(("relu6",), lambda x: np.clip(x, 0.0, 6.0), True),
    "leaky_relu": Activation(("leaky_relu",), lambda x: np.where(x > 0, x, 0.2 * x), True),
    "elu": elu_family(),
    "celu": _named("celu", _elu(1.0), True),  # alpha=1: celu == elu
    "selu": _named("selu", lambda x: SELU_SCALE * _elu(SELU_ALPHA)(x), True),
    "gelu": _named("gelu", _gelu_exact, False),  # keras.activations.gelu: approximate=False
    "gelu_approximate": _named("gelu_approximate", _gelu_tanh, False),
    "silu": _named("silu", _silu, False),
    "swish": _named("silu", _silu, False),
    "mish": _named("mish", lambda x: x * np.tanh(_softplus(x)), False),
    "sigmoid": _named("sigmoid", _sigmoid, True),
    "hard_sigmoid": _named("hard_sigmoid", _hard_sigmoid, True),
    "hard_silu": _named("hard_silu", lambda x: x * _hard_sigmoid(x), False),
    "hard_swish": _named("hard_silu", lambda x: x * _hard_sigmoid(x), False),
    "tanh": _named("tanh", np.tanh, True),
    "hard_tanh": _named("hard_tanh", lambda x: np.clip(x, -1.0, 1.0), True),
    "softplus": _named("softplus", _softplus, True),
    "softsign": _named("softsign", lambda x: x / (1.0 + np.abs(x)), True),
    "exponential": _named("exponential", np.exp, True),
    "log_sigmoid": _named("log_sigmoid", lambda x: -_softplus(-x), True),
    "sparse_sigmoid": _named("sparse_sigmoid", lambda x: np.clip(0.5 * (x + 1.0), 0.0, 1.0), True),
    "sparse_plus": _named("sparse_plus", _sparse_plus, True),
    "squareplus": _named("squareplus", lambda x: 0.5 * (x + np.sqrt(x * x + 4.0)), True),
    "tanh_shrink": _named("tanh_shrink", lambda x: x - np.tanh(x), True),
    "hard_shrink": _named("hard_shrink", _shrink_hard(0.5), False),
    "soft_shrink": _named("soft_shrink", _shrink_soft(0.5), True),
}
"""Keras 3 elementwise activations by name, as NumPy functions.

``softmax``, ``log_softmax``, ``sparsemax`` and ``glu`` act on a whole axis and
have their own estimators."""

AXIS_ACTIVATIONS = frozenset({"softmax", "log_softmax", "sparsemax", "glu"})


def activation_by_name(name: str) -> Activation | None:
    """The elementwise activation called ``name`` in Keras 3, or None."""
    return ACTIVATIONS.get(name)


def estimate_activation(x: SignalMoments, activation: Activation) -> SignalMoments:
    """Output moments of an elementwise activation (eqs. 5-6).

    ``mu_out = E[f(x)]``, ``nu_out = E[f(x)^2] - mu_out^2`` for
    ``x ~ N(mu_in, nu_in)``. The shared (per-channel) part of the output
    variance is ``Var_u(E_z[f(mu + sqrt(s) u + sqrt(nu - s) z)])``.

    Example:
        >>> from autoinit.moments import SignalMoments
        >>> y = estimate_activation(SignalMoments(0.0, 1.0), ACTIVATIONS["relu"])
        >>> round(y.mean, 4), round(y.var, 4)
        (0.3989, 0.3408)
    """
    if activation.is_linear:
        return x
    if x.offsets is not None:
        return _activation_per_channel(x, activation)
    first, second = gaussian_moments(activation.fn, x.mean, x.var, activation.key)
    shared = gaussian_shared_variance(activation.fn, x.mean, x.var, x.shared_var, activation.key)
    origin = (activation, x) if activation.monotone and x.origin is None else None
    return SignalMoments(first, second - first * first, shared, origin)


def _activation_per_channel(x: SignalMoments, activation: Activation) -> SignalMoments:
    """``f`` applied to elements with known expected values ``d`` (``x.offsets``).

    An element is ``N(d, r)`` (``r`` from ``x.random_map()``): its output has
    expected value ``m(d, r) = E_z[f(d + sqrt(r) z)]`` and variance
    ``E_z[f(.)^2] - m^2``; the output's offsets are ``m`` elementwise and its
    element variances those variances (and with the input's covariance the
    output's, by Mehler's expansion). ReLU, ReLU capped at ``c`` (ReLU6,
    ``ReLU(max_value=c)``) and the activations ``element_moments`` names have
    closed forms; for other ``f``
    the two smooth functions of ``(d, sqrt(r))`` are tabulated by quadrature on
    a grid over their range and interpolated (bilinear).
    """
    d = np.asarray(x.offsets, dtype=np.float64)
    r = np.broadcast_to(np.asarray(x.random_map(), dtype=np.float64), d.shape)
    first, second = element_moments(activation, d, np.sqrt(r))
    origin = (activation, x) if activation.monotone and x.origin is None else None
    y = SignalMoments.from_offsets(first, np.maximum(second - first * first, 0.0), origin)
    if x.covariance is None:
        return y
    return y.with_covariance(activation_covariance(activation.fn, d, r, x.covariance))


def element_moments(
    activation: Activation, d: np.ndarray, scale: np.ndarray, wide: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``E[f(X)]`` and ``E[f(X)^2]`` elementwise for ``X ~ N(d, scale^2)``:
    closed forms for ReLU, capped ReLU and the activations of
    ``autoinit.estimators.closed_forms`` (ELU, SELU, hard sigmoid, hard swish,
    leaky ReLU...), interpolated tables otherwise
    (``wide``: scales spanning orders of magnitude, tabulated on a finer,
    geometric grid with fewer quadrature nodes per entry)."""
    if activation.key == ("relu",):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(scale > 0.0, d / scale, np.where(d > 0.0, np.inf, -np.inf))
        cdf, pdf = special.ndtr(a), np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)
        return d * cdf + scale * pdf, (d * d + scale * scale) * cdf + d * scale * pdf
    if (cap := _relu_cap(activation.key)) is not None:
        return _capped_relu_moments(d, scale, cap)
    if wide:
        return _tabulated_moments(activation, d, scale, _WIDE_NODES, _WIDE_SCALES)
    if (closed := closed_form_moments(activation.key, activation.fn, d, scale)) is not None:
        return closed
    return _tabulated_moments(activation, d, scale)


def estimate_activation_mixed(x: SignalMoments, activation: Activation) -> SignalMoments:
    """``f`` applied to a tensor with a per-example scale (``x.scale_var``,
    see ``autoinit.estimators.scale_mixture``): each element is ``N(d, r s)``.

    The output's variance adds ``Var_s(E[f | s])`` (each example's mean moves
    with its scale; the same at all its positions, so it joins the per-example
    part ``example_shared_var`` and ``scale_driven_var``); at a fixed scale
    the input's per-example parts pass as a correlation between positions
    does (``scale_mixture.passed_fraction``, at the average element; the
    plain path keeps the fraction, its upper bound); ``scale_var`` becomes
    that of the summed conditional variance.
    Without a map of expected values (``offsets``) the mean is one channel's.
    """
    if x.offsets is not None:
        d = np.asarray(x.offsets, dtype=np.float64)
        r = np.broadcast_to(np.asarray(x.random_map(), dtype=np.float64), d.shape)
    else:
        d, r = np.array([x.mean]), np.array([x.fluctuating_var])
    y = mixed_elementwise_moments(
        lambda a, b: element_moments(activation, a, b, wide=True), d, r, x.scale_var
    )
    # At each scale the per-example parts pass through f like a correlation
    # between positions (Mehler), taken at the average element.
    mean_d, mean_r = float(np.mean(d)), float(np.mean(r))
    s, w = scale_nodes(x.scale_var)
    moments = [gaussian_moments(activation.fn, mean_d, mean_r * k, activation.key) for k in s]
    variances = np.array([max(m2 - m1 * m1, 0.0) for m1, m2 in moments])

    def passed(fraction: float) -> float:
        shares = [passed_fraction(activation.fn, mean_d, mean_r * k, fraction) for k in s]
        total = float(w @ variances)
        return float(w @ (np.array(shares) * variances)) / total if total > 0.0 else fraction

    example = float(np.mean(passed(x.example_fraction) * y.within + y.driven))
    driven = float(np.mean(passed(x.scale_driven_fraction) * y.within + y.driven))
    origin = (activation, x) if activation.monotone and x.origin is None else None
    if x.offsets is not None:
        out = SignalMoments.from_offsets(y.mean, y.var, origin)
    else:
        shared = gaussian_shared_variance(activation.fn, x.mean, x.var, x.shared_var, activation.key)
        out = SignalMoments(float(y.mean[0]), float(y.var[0]) + shared, shared, origin)
    return replace(out, example_shared_var=example, scale_var=y.scale_var, scale_driven_var=driven)


def _relu_cap(key: Hashable) -> float | None:
    """``c`` when ``key`` is a ReLU clipped to ``[0, c]`` (``relu6``, Keras'
    ``relu(x, max_value=c)``), else None."""
    if key == ("relu6",):
        return 6.0
    if isinstance(key, tuple) and len(key) == 4 and key[0] == "relu" and key[1] == 0.0 and key[3] == 0.0:
        return key[2] if key[2] is not None and key[2] > 0.0 else None
    return None


def _capped_relu_moments(d: np.ndarray, scale: np.ndarray, cap: float) -> tuple[np.ndarray, np.ndarray]:
    """``E[min(max(X, 0), c)]`` and ``E[.^2]`` for ``X ~ N(d, scale^2)``: with
    ``a = -d / s`` and ``b = (c - d) / s`` (the bounds in units of ``s``),
    ``E[X; a < Z < b] = d P + s (phi(a) - phi(b))``, ``E[X^2; a < Z < b] =
    (d^2 + s^2) P + 2 d s (phi(a) - phi(b)) + s^2 (a phi(a) - b phi(b))`` with
    ``P = Phi(b) - Phi(a)``, plus ``c`` (``c^2``) times ``Phi(-b)`` above the cap.
    A zero ``s`` gives the clipped ``d`` itself."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(scale > 0.0, -d / scale, np.where(d < 0.0, np.inf, -np.inf))
        b = np.where(scale > 0.0, (cap - d) / scale, np.where(d < cap, np.inf, -np.inf))
        pa, pb = (np.exp(-0.5 * t * t) / np.sqrt(2.0 * np.pi) for t in (a, b))
        a_pa, b_pb = (np.where(np.isfinite(t), t * p, 0.0) for t, p in ((a, pa), (b, pb)))
    inside, above = special.ndtr(b) - special.ndtr(a), special.ndtr(-b)
    first = d * inside + scale * (pa - pb) + cap * above
    second = (d * d + scale * scale) * inside + 2.0 * d * scale * (pa - pb)
    second = second + scale * scale * (a_pa - b_pb) + cap * cap * above
    return first, second


def _tabulated_moments(
    activation: Activation,
    d: np.ndarray,
    scale: np.ndarray,
    nodes: int = _PER_CHANNEL_NODES,
    log_scales: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``E[f(d + scale z)]`` and ``E[f(.)^2]`` elementwise, by interpolation
    (only the grid nodes the interpolation reads are tabulated: a map of a
    few hundred channels reads a few hundred of the table's 257 x 17)."""
    z, w = standard_normal_grid(nodes, 10.0)
    grid_d = np.linspace(float(d.min()), float(d.max()), _TABLE_SIZE)
    if not (np.diff(grid_d) > 0.0).all():  # one value, or values so close that nodes repeat
        grid_d = grid_d[:1]
    lo, hi = float(scale.min()), float(scale.max())
    if hi - lo <= 1e-9 * max(hi, 1.0):
        grid_s = np.array([hi])
    elif log_scales:  # ``log_scales`` points, log-spaced (and 0 when the smallest scale is 0)
        grid_s = np.geomspace(max(lo, 1e-6 * hi), hi, log_scales)
        grid_s = np.concatenate([[0.0], grid_s]) if lo < grid_s[0] else grid_s
    else:
        grid_s = np.linspace(lo, hi, _SCALE_TABLE_SIZE)
    rows, cols = np.nonzero(_needed_nodes((grid_d, grid_s), (d.ravel(), scale.ravel())))
    table1, table2 = np.zeros((grid_d.size, grid_s.size)), np.zeros((grid_d.size, grid_s.size))
    blocks = _row_blocks(rows.size, max(_TABLE_BLOCK_ELEMENTS // z.size // 16, 1) * 16)
    buffer = np.empty((max(b.stop - b.start for b in blocks), z.size))
    with np.errstate(all="ignore"):
        for block in blocks:
            points = np.multiply(
                grid_s[cols[block], None], z[None, :], out=buffer[: block.stop - block.start]
            )
            points += grid_d[rows[block], None]
            y = np.asarray(activation.fn(points), dtype=np.float64)
            table1[rows[block], cols[block]] = y @ w
            writable = y.flags.writeable and y.flags.owndata
            table2[rows[block], cols[block]] = (np.square(y, out=y) if writable else y * y) @ w
    if grid_s.size == 1 and grid_d.size == 1:  # one element value: np.interp would read row -1
        return np.full(d.shape, table1[0, 0]), np.full(d.shape, table2[0, 0])
    if grid_s.size == 1:
        return np.interp(d, grid_d, table1[:, 0]), np.interp(d, grid_d, table2[:, 0])
    if grid_d.size == 1:
        return np.interp(scale, grid_s, table1[0]), np.interp(scale, grid_s, table2[0])
    query = np.stack([d.ravel(), scale.ravel()], axis=-1)
    return _bilinear_pair((grid_d, grid_s), table1, table2, query, d.shape)


def _row_blocks(rows: int, per_block: int) -> list[slice]:
    """``rows`` cut into slices of ``per_block`` rows, the last one longer
    rather than a short tail (so that every row is multiplied by the
    quadrature weights as in one product over all rows: BLAS groups rows by
    small powers of two, and ``per_block`` is a multiple of 16).

    Example:
        >>> [(b.start, b.stop) for b in _row_blocks(1200, 512)]
        [(0, 512), (512, 1200)]
    """
    starts = list(range(0, rows - per_block + 1, per_block)) if rows > per_block else [0]
    return [slice(start, stop) for start, stop in zip(starts, [*starts[1:], rows])]


def _bilinear_pair(
    grids: tuple[np.ndarray, np.ndarray],
    table1: np.ndarray,
    table2: np.ndarray,
    query: np.ndarray,
    shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Both tables interpolated (bilinear, extrapolating linearly beyond the
    grid) at ``query`` ``(points, 2)``: the cell search and the corner
    weights are made once for both.

    Written here rather than taken from ``scipy.interpolate``, whose import
    (it loads ``scipy.optimize``) was half a second of a process's first
    ``initialize_model``."""
    (rows, down), (cols, right) = (_cell(g, x) for g, x in zip(grids, query.T))
    up, left = 1.0 - down, 1.0 - right
    corners = (((rows, cols), up, left), ((rows, cols + 1), up, right))
    corners += (((rows + 1, cols), down, left), ((rows + 1, cols + 1), down, right))

    def interpolate(table: np.ndarray) -> np.ndarray:
        value = np.zeros(len(query))
        for index, along_d, along_s in corners:
            value += table[index] * along_d * along_s  # in scipy's order: the same values
        return value.reshape(shape)

    return interpolate(table1), interpolate(table2)


def _cell(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``x``: the index ``i`` of its cell ``[grid[i], grid[i + 1]]``
    of the ascending ``grid`` (the first or last cell outside it) and its
    position there, ``(x - grid[i]) / (grid[i + 1] - grid[i])`` (below 0 or
    above 1 outside the grid: linear extrapolation)."""
    # A point on a node belongs to the cell right of it (scipy's choice).
    index = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    low = grid[index]
    return index, (x - low) / (grid[index + 1] - low)


def _needed_nodes(grids: tuple[np.ndarray, ...], values: tuple[np.ndarray, ...]) -> np.ndarray:
    """Which nodes of the grid spanned by the ascending ``grids`` a linear
    interpolation at the points ``values`` (one array per axis) reads: on
    each axis the two around the point, for either side a point at a node
    may be put (``np.interp`` and ``RegularGridInterpolator`` differ).

    With ``L``, ``R`` a point's cell on either side, the nodes are
    ``{L, L + 1, R, R + 1}`` per axis: the corners ``{L, R}`` are marked
    (corners other than all-``L`` only for the few points where ``R != L``),
    then every mark extended by one node along each axis."""
    needed = np.zeros(tuple(g.size for g in grids), dtype=bool)
    sides = []
    for g, v in zip(grids, values):
        if g[-1] == g[0]:
            zero = np.zeros(v.size, dtype=np.intp)
            sides.append((zero, zero))
            continue
        left = np.clip(np.searchsorted(g, v, side="left") - 1, 0, g.size - 1)
        right = np.clip(np.searchsorted(g, v, side="right") - 1, 0, g.size - 1)
        sides.append((left, right))
    differs = [right != left for left, right in sides]
    for corner in itertools.product((0, 1), repeat=len(grids)):
        index = tuple(side[c] for side, c in zip(sides, corner))
        if any(corner):
            some = np.logical_or.reduce([d for d, c in zip(differs, corner) if c])
            index = tuple(i[some] for i in index)
        needed[index] = True
    for axis, g in enumerate(grids):
        if g[-1] != g[0] and g.size > 1:
            moved = np.moveaxis(needed, axis, 0)
            moved[1:] = moved[1:] | moved[:-1]
    return needed


def estimate_glu(x: SignalMoments) -> SignalMoments:
    """GLU: ``a * sigmoid(b)`` with ``a``, ``b`` the two halves of an axis.

    With ``a`` and ``b`` independent: ``mu = E[a] E[s(b)]`` and
    ``E[y^2] = E[a^2] E[s(b)^2]``. The output axis is half the input's.
    """
    gate = ACTIVATIONS["sigmoid"]
    s1, s2 = gaussian_moments(gate.fn, x.mean, x.var, gate.key)
    gate_shared = gaussian_shared_variance(gate.fn, x.mean, x.var, x.shared_var, gate.key)
    mean = x.mean * s1
    second = x.second_moment * s2
    # Per channel pair: (mu + d_a) * g(d_b), both offsets independent.
    shared = (x.mean**2 + x.shared_var) * (gate_shared + s1 * s1) - mean * mean
    return SignalMoments(mean, second - mean * mean, shared)


def estimate_softmax(
    x: SignalMoments,
    axis_size: int,
    log: bool = False,
    samples: int = 20000,
    seed: int = 0,
) -> SignalMoments:
    """Softmax (or log-softmax) over an axis of ``axis_size`` elements.

    The outputs sum to 1, so ``mu_out = 1 / n`` exactly. The variance has no
    closed form for small ``n``; it is estimated by a seeded Monte Carlo
    simulation of ``samples`` Gaussian logit vectors. Per-channel offsets
    (``shared_var``) differ between the softmax's elements, so the whole
    variance counts.
    """
    n = max(int(axis_size), 1)
    if n == 1:
        return SignalMoments(0.0 if log else 1.0, 0.0)
    rows = max(int(samples) // n, 256)
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((rows, n)) * np.sqrt(x.var)
    log_probs = logits - special.logsumexp(logits, axis=1, keepdims=True)
    values = log_probs if log else np.exp(log_probs)
    mean = 1.0 / n if not log else float(values.mean())
    return SignalMoments(mean, float(np.mean(values * values)) - mean * mean)


def estimate_masked_softmax(
    x: SignalMoments, valid: np.ndarray, axis_size: int, samples: int = 20000
) -> SignalMoments:
    """Softmax over ``axis_size`` elements of which each row keeps
    ``valid[r]`` (a padding or causal mask; masked elements are 0).

    Every row still sums to 1, so ``mu_out = 1 / n``; ``E[p^2]`` is the
    average over rows of ``k E_k[p^2]`` for a ``k``-element softmax (a row
    with nothing valid is uniform over all ``n``, as Keras' softmax with a
    mask gives), spread over the ``n`` elements of the row.
    """
    n = max(int(axis_size), 1)
    counts = np.asarray(valid, dtype=np.int64).ravel()
    counts = np.where(counts <= 0, n, np.minimum(counts, n))
    if counts.size == 0:
        return estimate_softmax(x, n, samples=samples)
    ks, rows = np.unique(counts, return_counts=True)
    second = 0.0
    for k, weight in zip(ks, rows):
        part = estimate_softmax(x, int(k), samples=samples)
        second += weight * int(k) * part.second_moment
    second /= counts.size * n
    mean = 1.0 / n
    return SignalMoments(mean, max(second - mean * mean, 0.0))


def composed(outer: Activation, inner: Activation) -> Activation:
    """``outer(inner(x))`` as one elementwise activation."""
    if inner.is_linear:
        return outer
    if outer.is_linear:
        return inner
    return Activation(
        ("compose", outer.key, inner.key), lambda x: outer.fn(inner.fn(x)), outer.monotone and inner.monotone
    )


def affine_of(scale: float, shift: float, inner: Activation) -> Activation:
    """``scale * inner(x) + shift`` as one elementwise activation."""
    if scale == 1.0 and shift == 0.0:
        return inner
    return Activation(
        ("affine", float(scale), float(shift), inner.key),
        lambda x: scale * inner.fn(x) + shift,
        scale >= 0.0 and inner.monotone,
    )


_COMBINATIONS = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply,
    "maximum": np.maximum, "minimum": np.minimum,
}  # fmt: skip


def combined(operation: str, parts: list[Activation]) -> Activation:
    """``parts[0](x) <operation> parts[1](x) <operation> ...`` (``operation``
    one of add, subtract, multiply, maximum, minimum, average) as one
    elementwise activation: two functions of one Gaussian tensor are not
    independent (``x * sigmoid(x)`` is swish, not a product of independent
    factors), but together they are one function of it (eqs. 5-6 apply).

    Example:
        >>> swish = combined("multiply", [ACTIVATIONS["linear"], ACTIVATIONS["sigmoid"]])
        >>> bool(np.allclose(swish.fn(np.array([1.0])), ACTIVATIONS["silu"].fn(np.array([1.0]))))
        True
    """
    if operation == "average":
        total = combined("add", parts)
        n = len(parts)
        return Activation(("average", total.key), lambda x: total.fn(x) / n)
    merge = _COMBINATIONS[operation]

    def fn(x: np.ndarray) -> np.ndarray:
        out = parts[0].fn(x)
        for part in parts[1:]:
            out = merge(out, part.fn(x))
        return out

    return Activation(("combine", operation, *(p.key for p in parts)), fn)


def callable_activation(fn: Callable[[np.ndarray], np.ndarray], key: Hashable) -> Activation:
    """Wrap any vectorized callable (the adapter supplies one for user activations)."""
    return Activation(key, fn, monotone=False)
