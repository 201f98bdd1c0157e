"""What a layer rule sees: the layer call, its input moments, and the session
(settings, weight writer, what earlier calls of a shared layer chose).

Realised offsets: when the session writes weights, a weighted layer's output
expected values are computed from the weights just drawn (see
``SignalMoments.offsets``), instead of only their expected spread over draws.
Inputs whose ``offsets`` do not fit the tensor's shape are reduced to one
value per channel when the channel axis still fits, and forgotten otherwise
(a layer moved the channel axis, or a pass-through estimator changed the
shape), so rules only ever see aligned offsets.

Conditioning on the draw (``Session.condition_on_draw``, the default): the
dense scale ``Var(W) = target / (fan_in E[x^2])`` hits the target only on
average over draws; with few inputs per unit (4-8 channels, 3 taps) one draw
is easily 0.5x or 1.5x off. When the realised output moments of a freshly
drawn kernel are computable, the kernel is redrawn from the same seed with its
variance multiplied by ``target / E_realised[z^2]`` (one scalar per kernel),
so that the realised pre-activation second moment ``mean^2 + var`` equals the
target exactly. The effective variance is what the estimates report
(``scale``) and what ``initialized_config`` carries. The realised moments are
read from the draft of the first draw (``WeightWriter.draft``, the values a
write would give, computed in NumPy), so a kernel is written once.

Per-example components (``SignalMoments.example_shared_var``): a linear map
keeps the fraction of the random part that is constant over one example's
positions (exact for a position-wise map when every input channel has the
same fraction; for convolutions the cross-tap covariances average to zero
over the weight draw). An elementwise activation keeps the fraction too: for
jointly Gaussian inputs of correlation ``rho`` the Hermite expansion gives
``Cov(f(a), f(b)) = sum_k c_k^2 rho^k <= rho Var f``, so this is the upper end
of the exact value (exact for linear ``f``; for ReLU/GELU the linear term
alone is about 3/4 of it). A per-example scale (``SignalMoments.scale_var``)
passes linear maps unchanged; an activation integrates over it
(``estimate_activation_mixed``): its mean moves with each example's scale.

Shared layers: weights are chosen on a layer's first call; later calls reuse
them and cannot be rescaled, so their records have ``target`` None and the
note names the call that set the weights (``LayerNote.shared_with``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np

from autoinit.estimators.activations import (
    ACTIVATIONS,
    Activation,
    combined,
    composed,
    estimate_activation,
    estimate_activation_mixed,
    estimate_glu,
    estimate_softmax,
)
from autoinit.estimators.core import dense_weight_variance, estimate_dense
from autoinit.keras_adapter.activations import resolve_activation
from autoinit.keras_adapter.composite import open_dim
from autoinit.keras_adapter.graph import LayerCall
from autoinit.keras_adapter.weights import WeightWriter
from autoinit.moments import SignalMoments

__all__ = ["LayerContext", "Session", "LayerNote"]


@dataclass
class LayerNote:
    """What AutoInit did at one layer call (becomes one ``estimates`` record)."""

    estimator: str = "builtin"
    target: float | None = None
    weight_variances: dict[str, float] = field(default_factory=dict)
    pre_activation: SignalMoments | None = None
    shared_with: str | None = None
    """For a later call of a shared layer: the call whose pass set its weights."""


@dataclass
class Session:
    """State shared by all rules during one ``initialize_model`` pass."""

    writer: WeightWriter | None  # None: estimate only, leave weights alone
    signal_variance: float = 1.0
    monte_carlo_samples: int = 20000
    recurrent_monte_carlo_samples: int = 10000
    condition_on_draw: bool = True
    chosen: dict[int, dict[str, float]] = field(default_factory=dict)
    first_calls: dict[int, str] = field(default_factory=dict)


@dataclass
class LayerContext:
    call: LayerCall
    inputs: list[SignalMoments]
    args: tuple
    kwargs: dict
    session: Session
    note: LayerNote = field(default_factory=LayerNote)

    def __post_init__(self) -> None:
        shapes = self.call.input_shapes
        if getattr(self.layer, "data_format", None) == "channels_first" or len(shapes) != len(self.inputs):
            self.inputs = [without_offsets(m) for m in self.inputs]
        else:
            self.inputs = [aligned_offsets(m, tuple(shape[1:])) for m, shape in zip(self.inputs, shapes)]
        first = self.session.first_calls.setdefault(id(self.layer), self.call.name)
        if first != self.call.name:
            self.note.shared_with = first

    @property
    def layer(self) -> Any:
        return self.call.layer

    @property
    def x(self) -> SignalMoments:
        return self.inputs[0]

    @property
    def input_shape(self) -> tuple:
        return self.call.input_shapes[0]

    @property
    def output_shape(self) -> tuple:
        return self.call.output_shapes[0]

    @property
    def target(self) -> float:
        return self.session.signal_variance

    # -- weights -------------------------------------------------------------

    def weight_variance(self, place: str, choose: float) -> float:
        """The variance for weight ``place``: ``choose`` on the layer's first
        call, whatever was chosen then on later calls (shared weights)."""
        chosen = self.session.chosen.setdefault(id(self.layer), {})
        if place not in chosen:
            chosen[place] = choose
        self.note.weight_variances[place] = chosen[place]
        return chosen[place]

    def first_call(self, place: str) -> bool:
        return place not in self.session.chosen.get(id(self.layer), {})

    def aim(self, target: float, overwrite: bool = False) -> None:
        """Record ``target`` as what this call's output was scaled to (kept
        None on a later call of a shared layer: its weights are not rescaled)."""
        if self.note.shared_with is None and (overwrite or self.note.target is None):
            self.note.target = target

    def write(self, variable: Any, variance: float, place: str, initializer_attr: str | None) -> None:
        """Draw ``variable`` (callers write only on the layer's first call)."""
        writer = self.session.writer
        if writer is not None:
            writer.write(self.layer, variable, variance, self.seed_place(place), initializer_attr)

    def draft(self, variable: Any, variance: float, place: str) -> np.ndarray | None:
        """What ``write`` would put in ``variable`` (float64), not written yet
        (None where the writer cannot say without writing)."""
        shape = tuple(int(d) for d in variable.shape)
        return self.session.writer.draft(shape, variance, self.seed_place(place), variable.dtype)

    def seed_place(self, role: str) -> str:
        """Where a variable sits, for its seed: this call's topological
        position and the variable's role (``"kernel"``, ``"query"``...),
        never layer names, which Keras numbers per process."""
        return f"{self.call.position}:{role}"

    def zero(self, variable: Any, initializer_attr: str = "bias_initializer") -> None:
        if self.session.writer is not None and variable is not None:
            self.session.writer.zero(self.layer, variable, initializer_attr)

    def dense_like(
        self,
        x: SignalMoments,
        fan_in: float,
        variable: Any,
        place: str = "kernel",
        initializer_attr: str | None = "kernel_initializer",
        target: float | None = None,
        realised: Realised | None = None,
        shape: tuple | None = None,
        in_channels: int | None = None,
    ) -> SignalMoments:
        """Scale one kernel so that ``W x`` has variance ``target``; return ``W x``.

        ``realised(kernel, x, offsets)`` computes the output moments from the
        drawn kernel and the input's expected values (a map for one example of
        ``shape``, by default the layer's input; last axis ``in_channels``, by
        default ``variable.shape[-2]``); it is used when weights are being
        written. On the layer's first call the kernel is then conditioned on
        its draw (see the module docstring).
        """
        target = self.target if target is None else target
        first = self.first_call(place)
        variance = (
            dense_weight_variance(x, fan_in, target) if first else self.session.chosen[id(self.layer)][place]
        )
        use_draw = realised is not None and self.session.writer is not None and len(variable.shape) >= 2
        drawn = self.draft(variable, variance, place) if first and use_draw else None
        if first and drawn is None:
            self.write(variable, variance, place, initializer_attr)
        z = None
        own = 0.0  # the per-example share this kernel makes (overlapping windows)
        try:
            if use_draw:
                channels = int(variable.shape[-2]) if in_channels is None else int(in_channels)
                shape = tuple(self.input_shape[1:]) if shape is None else tuple(shape)
                kernel = drawn if drawn is not None else np.asarray(variable.numpy(), dtype=np.float64)
                z = realised_moments(realised, kernel, x, shape, channels)
                own = z.example_fraction if z is not None else 0.0
                factor = conditioning_factor(z, target) if z is not None else None
                if factor is not None and first and self.session.condition_on_draw:
                    variance *= factor
                    if drawn is None:
                        self.write(variable, variance, place, initializer_attr)
                    z = scaled(z, factor)
        finally:
            if drawn is not None:  # the kernel is written once, at its final variance
                self.write(variable, variance, place, initializer_attr)
        variance = self.weight_variance(place, variance)
        self.aim(target)
        z = z if z is not None else estimate_dense(x, fan_in, variance)
        fraction = x.example_fraction + (1.0 - x.example_fraction) * own
        z = z.with_example_fraction(fraction) if fraction > 0.0 else z
        return z.with_scale_of(x)  # the same map for every example: the per-example scale stays

    def activate(self, z: SignalMoments, activation_fn: Any, axis_size: int | None = None) -> SignalMoments:
        """Apply a (fused or standalone) activation to pre-activation ``z``
        (keeping the per-example fraction, see the module docstring)."""
        activation = resolve_activation(activation_fn)
        mixed = isinstance(activation, Activation) and not activation.is_linear and z.scale_var > 0.0
        if mixed:  # a per-example scale: the per-example parts come from the mixture
            self.note.pre_activation = z
            y = estimate_activation_mixed(z, activation).with_profile_of(z)
        else:
            y = self._activate(z, activation_fn, axis_size).with_profile_of(z)
        if not isinstance(activation, Activation):
            return y
        if not activation.is_linear:
            base, inner = elementwise_source(z)
            y = replace(y, source=(base, composed(activation, inner)))
        if mixed:
            return y
        y = y.with_example_fraction_of(z)
        return y.with_scale_of(z)

    def _activate(self, z: SignalMoments, activation_fn: Any, axis_size: int | None = None) -> SignalMoments:
        activation = resolve_activation(activation_fn)
        if isinstance(activation, Activation):
            if activation.is_linear:
                return z
            self.note.pre_activation = z
            return estimate_activation(z, activation)
        self.note.pre_activation = z
        if activation == "glu":
            return estimate_glu(z)
        size = axis_size if axis_size else self.output_shape[-1] or open_dim()
        return estimate_softmax(
            z, int(size), log=activation == "log_softmax", samples=self.session.monte_carlo_samples
        )


MAP_ELEMENTS = 16384
"""Largest expected-value map (elements per example) kept per position; larger
outputs keep one value per channel (their position spread joins the variance).
Position detail matters on small maps, where border taps are a large share,
and the maps of every tensor stay in memory for the whole pass."""

Realised = Callable[[np.ndarray, SignalMoments, np.ndarray], SignalMoments]


def realised_moments(
    realised: Realised, kernel: np.ndarray, x: SignalMoments, shape: tuple, channels: int
) -> SignalMoments | None:
    """Output moments for the drawn ``kernel``, or None when not computable.

    With the input's map of expected values: ``realised`` on it. Without one
    (its per-channel offsets ``shared_var`` are unknown), the expectation over
    those unknown offsets for this kernel: the known mean as a constant map,
    plus the offsets' part, ``realised`` of a zero map with variance
    ``shared_var``, which is constant per output unit (shared).
    """
    offsets = x.offset_map(shape)
    if offsets is not None:
        if offsets.shape[-1] != channels:
            return None
        z = realised(kernel, x, np.asarray(offsets, np.float64))
        return z.per_channel() if z.offsets.size > MAP_ELEMENTS else z
    if x.offsets is not None or not (math.isfinite(x.mean) and math.isfinite(x.var)):
        return None
    known_part = SignalMoments(x.mean, x.fluctuating_var)
    offsets_part = SignalMoments(0.0, x.shared_var)
    base = known_part.offset_map(shape)
    if base is None or base.shape[-1] != channels:
        return None
    known = realised(kernel, known_part, np.asarray(base, np.float64))
    unknown = realised(kernel, offsets_part, np.zeros_like(base, dtype=np.float64)).var
    return SignalMoments(known.mean, known.var + unknown, known.shared_var + unknown)


def conditioning_factor(z: SignalMoments, target: float) -> float | None:
    """``target / E[z^2]``: the weight-variance multiplier that gives the
    realised output ``z`` second moment ``target``; None when undefined."""
    second = z.second_moment
    if not (second > 0.0 and math.isfinite(second)):
        return None
    factor = target / second
    return factor if math.isfinite(factor) and factor > 0.0 else None


def scaled(z: SignalMoments, factor: float) -> SignalMoments:
    """The moments of ``sqrt(factor) * z`` (a kernel scaled by ``sqrt(factor)``)."""
    if z.offsets is not None:
        out = SignalMoments.from_offsets(z.offsets * math.sqrt(factor), z.random_map() * factor)
        out = out.scaled_by(factor, z)
        return out if z.covariance is None else out.with_covariance(z.covariance * factor)
    return SignalMoments(z.mean * math.sqrt(factor), z.var * factor, z.shared_var * factor)


def without_offsets(m: SignalMoments) -> SignalMoments:
    """The same moments with the realised per-channel values forgotten."""
    return replace(m, offsets=None) if m.offsets is not None else m


def aligned_offsets(m: SignalMoments, shape: tuple) -> SignalMoments:
    """``m`` with offsets that fit one example's ``shape``: kept if they do,
    reduced per channel if only the channel axis fits, else forgotten."""
    if m.offsets is None:
        return m
    if shape and m.offsets.shape == shape and all(d is not None for d in shape):
        return m
    if shape and shape[-1] == m.offsets.shape[-1]:
        # Per channel of a larger tensor: the covariance no longer describes it.
        return replace(m.per_channel(), covariance=None)
    return without_offsets(m)


def elementwise_source(m: SignalMoments) -> tuple[SignalMoments, Activation]:
    """``(base, f)`` with ``m = f(base)`` elementwise (``m`` and the identity
    when ``m`` records no source; see ``SignalMoments.source``)."""
    return m.source if m.source is not None else (m, ACTIVATIONS["linear"])


def one_function_of_one_tensor(operation: str, xs: list[SignalMoments]) -> SignalMoments | None:
    """``xs`` merged by ``operation`` when every input is an elementwise
    function of one tensor (``x * sigmoid(x)``, ``x + x``): that tensor
    through the combined function (``estimators.activations.combined``);
    None when the inputs have different sources (taken as independent)."""
    if len(xs) < 2:
        return None
    sources = [elementwise_source(m) for m in xs]
    base = sources[0][0]
    if any(b is not base for b, _ in sources[1:]):
        return None
    merged = combined(operation, [f for _, f in sources])
    y = estimate_activation(base, merged)
    y = replace(y, source=(base, merged))
    return y.with_example_fraction_of(base)


def normalized_axes(axis, rank: int) -> list[int]:
    """Keras' ``axis`` argument (an int or a list) as non-negative axes."""
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return [a % rank for a in axes]


def known_mask(value: Any) -> np.ndarray | None:
    """A mask argument as a boolean array when the walk knows it (an array it
    evaluated, see ``propagate``, or a constant a composite's trace baked in,
    e.g. a causal mask built from shapes alone); None otherwise."""
    if value is None or isinstance(value, SignalMoments):
        return None
    try:
        return np.asarray(keras.ops.convert_to_numpy(value)).astype(bool)
    except (TypeError, ValueError):
        return None


def kept_keys(mask: Any, queries: int, keys: int) -> np.ndarray | None:
    """The keys each query keeps under a known attention ``mask``
    (``known_mask``) broadcast to ``(..., queries, keys)`` booleans, as Keras
    broadcasts it (``(B, S)``, ``(B, 1, S)``, ``(B, T, S)``, ``(B, H, T, S)``);
    None without one or if it does not broadcast."""
    kept = known_mask(mask)
    if kept is None or kept.ndim == 0 or kept.shape[-1] != keys:
        return None
    try:
        return np.broadcast_to(kept, (*kept.shape[:-2], queries, keys))
    except ValueError:
        return None


def size_over_axes(shape: tuple, axes: list[int]) -> int:
    """Elements spanned by ``axes`` of ``shape`` (an unknown dimension counts
    as ``open_dim()``, the size the probes feed it)."""
    return math.prod(shape[a] or open_dim() for a in axes)


def spatial_dims(shape: tuple, data_format: str | None, rank: int) -> tuple:
    """The ``rank`` spatial dimensions of ``shape`` (batch axis included)."""
    if data_format == "channels_first":
        return tuple(shape[2 : 2 + rank])
    return tuple(shape[1 : 1 + rank])


def element_count(shape: tuple) -> int:
    """Elements per example (unknown dimensions count as 1)."""
    return math.prod(d for d in shape[1:] if d is not None) if len(shape) > 1 else 1
