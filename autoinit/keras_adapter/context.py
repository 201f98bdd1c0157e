"""What a layer rule sees: the layer call, its input moments, and the session
(settings, weight writer, what earlier calls of a shared layer chose).

Realised offsets: when the session writes weights, a weighted layer's output
expected values are computed from the weights just drawn (see
``SignalMoments.offsets``), instead of only their expected spread over draws.
Inputs whose ``offsets`` do not fit the tensor's shape are reduced to one
value per channel when the channel axis still fits, and forgotten otherwise
(a layer moved the channel axis, or a pass-through estimator changed the
shape), so rules only ever see aligned offsets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autoinit.estimators.activations import Activation, estimate_activation, estimate_glu, estimate_softmax
from autoinit.estimators.core import dense_weight_variance, estimate_dense
from autoinit.keras_adapter.activations import resolve_activation
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


@dataclass
class Session:
    """State shared by all rules during one ``initialize_model`` pass."""

    writer: WeightWriter | None  # None: estimate only, leave weights alone
    signal_variance: float = 1.0
    monte_carlo_samples: int = 20000
    recurrent_monte_carlo_samples: int = 10000
    chosen: dict[int, dict[str, float]] = field(default_factory=dict)


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

    def write(self, variable: Any, variance: float, place: str, initializer_attr: str | None) -> None:
        """Draw ``variable`` (callers write only on the layer's first call)."""
        writer = self.session.writer
        if writer is not None:
            writer.write(self.layer, variable, variance, self.call.name.split("#")[0] + ":" + place, initializer_attr)

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
    ) -> SignalMoments:
        """Scale one kernel so that ``W x`` has variance ``target``; return ``W x``.

        ``realised(kernel, x, offsets)`` computes the output moments from the
        drawn kernel and the input's per-channel expected values; it is used
        when weights are being written and those values are known.
        """
        target = self.target if target is None else target
        first = self.first_call(place)
        variance = self.weight_variance(place, dense_weight_variance(x, fan_in, target))
        if first:
            self.write(variable, variance, place, initializer_attr)
        self.note.target = target if self.note.target is None else self.note.target
        if realised is not None and self.session.writer is not None and len(variable.shape) >= 2:
            offsets = x.offset_map(tuple(self.input_shape[1:]))
            if offsets is not None and offsets.shape[-1] == int(variable.shape[-2]):
                z = realised(np.asarray(variable.numpy(), dtype=np.float64), x, np.asarray(offsets, np.float64))
                return z.per_channel() if z.offsets.size > MAP_ELEMENTS else z
        return estimate_dense(x, fan_in, variance)

    def activate(self, z: SignalMoments, activation_fn: Any, axis_size: int | None = None) -> SignalMoments:
        """Apply a (fused or standalone) activation to pre-activation ``z``."""
        activation = resolve_activation(activation_fn)
        if isinstance(activation, Activation):
            if activation.is_linear:
                return z
            self.note.pre_activation = z
            return estimate_activation(z, activation)
        self.note.pre_activation = z
        if activation == "glu":
            return estimate_glu(z)
        size = axis_size if axis_size else self.output_shape[-1] or 1
        return estimate_softmax(
            z, int(size), log=activation == "log_softmax", samples=self.session.monte_carlo_samples
        )


MAP_ELEMENTS = 16384
"""Largest expected-value map (elements per example) kept per position; larger
outputs keep one value per channel (their position spread joins the variance).
Position detail matters on small maps, where border taps are a large share,
and the maps of every tensor stay in memory for the whole pass."""

Realised = Callable[[np.ndarray, SignalMoments, np.ndarray], SignalMoments]


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
        return m.per_channel()
    return without_offsets(m)


def element_count(shape: tuple) -> int:
    """Elements per example (unknown dimensions count as 1)."""
    return math.prod(d for d in shape[1:] if d is not None) if len(shape) > 1 else 1
