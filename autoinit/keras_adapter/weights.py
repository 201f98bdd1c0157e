"""Draws and writes weights with the scales AutoInit chose.

Weights are drawn by Keras' own seeded initializers (``VarianceScaling`` in
``fan_in`` mode, or ``Orthogonal``) and the same initializer objects are set
on the layer, so ``model.get_config()`` afterwards *is* the initialized
config: rebuilding a model from it reproduces the same weights.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.options import DISTRIBUTIONS

__all__ = ["DISTRIBUTIONS", "WeightWriter", "keras_fan_in"]


def keras_fan_in(shape: tuple[int, ...]) -> float:
    """The fan-in ``VarianceScaling`` computes for ``shape`` (Keras' rule)."""
    if len(shape) < 1:
        return 1.0
    if len(shape) == 1:
        return float(shape[0])
    if len(shape) == 2:
        return float(shape[0])
    return float(shape[-2] * math.prod(shape[:-2]))


class WeightWriter:
    """Writes weights of a given element variance, seeded per variable.

    Args:
        distribution: one of ``DISTRIBUTIONS``.
        seed: master seed; each variable's seed is derived from it and the
            variable's place in the model (its layer call's topological
            position and its role, see ``LayerContext.seed_place``), so the
            same architecture and seed give bit-identical weights however
            the layers are named.
        constrain: also attach ``CenteredScale`` constraints (keeps weights
            zero-mean at their initial scale during training).
    """

    def __init__(self, distribution: str, seed: int, constrain: bool = False) -> None:
        if distribution not in DISTRIBUTIONS:
            raise AutoInitError(
                f"`distribution` should be one of {DISTRIBUTIONS}. Received: distribution={distribution!r}"
            )
        self.distribution = distribution
        self.seed = int(seed)
        self.constrain = constrain

    def variable_seed(self, place: str) -> int:
        return (zlib.crc32(place.encode()) ^ (self.seed * 2654435761)) % (2**31 - 1)

    def initializer(
        self, shape: tuple[int, ...], variance: float, place: str
    ) -> keras.initializers.Initializer:
        seed = self.variable_seed(place)
        if self.distribution == "orthogonal" and len(shape) >= 2:
            rows, cols = math.prod(shape[:-1]), shape[-1]
            gain = math.sqrt(variance * max(rows, cols))
            return keras.initializers.Orthogonal(gain=gain, seed=seed)
        distribution = "truncated_normal" if self.distribution == "orthogonal" else self.distribution
        scale = variance * max(1.0, keras_fan_in(shape))
        return keras.initializers.VarianceScaling(
            scale=scale, mode="fan_in", distribution=distribution, seed=seed
        )

    def write(
        self, layer: Any, variable: Any, variance: float, place: str, initializer_attr: str | None
    ) -> None:
        """Draw ``variable`` with element variance ``variance``; record the
        initializer on ``layer.<initializer_attr>`` for the config."""
        if not (variance > 0.0 and math.isfinite(variance)):
            raise AutoInitError(
                f"Cannot initialize '{variable.path}' of layer '{layer.name}' ({type(layer).__name__}): "
                f"expected a positive finite weight variance. Received: {variance}"
            )
        shape = tuple(int(d) for d in variable.shape)
        init = self.initializer(shape, variance, place)
        variable.assign(init(shape, dtype=variable.dtype))
        if initializer_attr and hasattr(layer, initializer_attr):
            setattr(layer, initializer_attr, init)
        if self.constrain:
            from autoinit.keras_adapter.constraints import CenteredScale

            constraint_attr = (
                initializer_attr.replace("_initializer", "_constraint") if initializer_attr else None
            )
            constraint = CenteredScale(stddev=math.sqrt(variance))
            variable.constraint = constraint
            if constraint_attr and hasattr(layer, constraint_attr):
                setattr(layer, constraint_attr, constraint)

    def redraw(self, layer: Any, variable: Any, initializer: Any, place: str) -> None:
        """Redraw a weight AutoInit does not scale with its own initializer, seeded."""
        config = initializer.get_config() if hasattr(initializer, "get_config") else None
        if config is not None and "seed" in config:
            seeded = type(initializer).from_config({**config, "seed": self.variable_seed(place)})
            shape = tuple(int(d) for d in variable.shape)
            variable.assign(seeded(shape, dtype=variable.dtype))

    @staticmethod
    def zero(layer: Any, variable: Any | None, initializer_attr: str | None) -> None:
        if variable is None:
            return
        variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))
        if initializer_attr and hasattr(layer, initializer_attr):
            setattr(layer, initializer_attr, keras.initializers.Zeros())
