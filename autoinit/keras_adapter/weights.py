"""Draws and writes weights with the scales AutoInit chose.

Weights are drawn by Keras' own seeded initializers (``VarianceScaling`` in
``fan_in`` mode, or ``Orthogonal``) and the same initializer objects are set
on the layer, so ``model.get_config()`` afterwards *is* the initialized
config: rebuilding a model from it reproduces the same weights.

Redrawing at another scale (conditioning on the draw writes a kernel twice
from one seed) reuses the first call's unit draw: on TensorFlow, Keras'
initializers compute ``unit * stddev + mean`` (uniform: ``unit * (max - min)
+ min``; orthogonal: ``gain * q``) in the variable's dtype, one op at a time,
so the same product of the kept unit draw is bit-identical to calling the
initializer again, without a second truncated-normal draw (or QR).

The unit draws themselves come from TensorFlow's raw stateless kernels
(``_unit_draw``) and can be made ahead on a background thread while the walk
runs (``WeightWriter.drawing_ahead``, see ``ahead.py``): a unit draw depends
only on its kind, seed, shape and dtype, so the weights are the same bit for
bit.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.options import DISTRIBUTIONS

__all__ = ["DISTRIBUTIONS", "WeightWriter", "keras_fan_in"]


def _unit_affine(
    init: keras.initializers.Initializer, kind: str, shape: tuple[int, ...]
) -> tuple[float, float | None]:
    """``(multiplier, offset)`` Keras' initializer applies to its unit draw
    (``unit * multiplier + offset``, each a float32 op; offset None: no add). The normal kinds add
    a mean of 0.0, which changes no float but -0.0 (no unit normal draw is):
    no add."""
    if kind == "orthogonal":
        return init.gain, None
    scale = init.scale / max(1.0, keras_fan_in(shape))
    if kind == "truncated_normal":
        return math.sqrt(scale) / _TRUNCATED_STDDEV, None
    if kind == "untruncated_normal":
        return math.sqrt(scale), None
    limit = math.sqrt(3.0 * scale)
    # Keras multiplies by maxval - minval in float32: exactly twice float32(limit).
    return 2.0 * float(np.float32(limit)), -limit


def _scaled(
    unit: Any, init: keras.initializers.Initializer, kind: str, shape: tuple[int, ...], dtype: Any
) -> Any:
    """``init``'s values from its unit draw: the ops Keras' initializer
    applies to it (``_unit_affine``), in ``dtype``."""
    multiplier, offset = _unit_affine(init, kind, shape)
    values = keras.ops.multiply(unit, keras.ops.convert_to_tensor(multiplier, dtype=dtype))
    if offset is not None:
        values = keras.ops.add(values, keras.ops.convert_to_tensor(offset, dtype=dtype))
    return values


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
        self._unit: tuple[tuple, Any] | None = None  # (key, unit draw) of the last variable drawn
        self._ahead: Any = None  # an ``ahead.DrawAhead`` while ``drawing_ahead`` is active

    @contextlib.contextmanager
    def drawing_ahead(self, model: Any) -> Iterator[None]:
        """Within the block, the unit draws of ``model``'s kernels are made
        ahead on a background thread (TensorFlow only; see ``ahead.py``)."""
        if keras.backend.backend() != "tensorflow":
            yield
            return
        from autoinit.keras_adapter import ahead

        try:
            keys = ahead.plan(model, self.unit_key)
        except Exception:  # noqa: BLE001 - only a speed-up: the walk reports what is wrong
            keys = []
        with ahead.DrawAhead(keys, _drawer_on(_current_device())) as drawer:
            self._ahead = drawer
            try:
                yield
            finally:
                self._ahead = None

    def unit_key(self, shape: tuple[int, ...], place: str, dtype: Any) -> tuple | None:
        """``(kind, seed, shape, dtype)``: what the unit draw of a variable at
        ``place`` depends on; None where ``_draw`` makes no unit draw."""
        if keras.backend.backend() != "tensorflow" or keras.backend.standardize_dtype(dtype) != "float32":
            return None
        kind = "orthogonal" if self.distribution == "orthogonal" and len(shape) >= 2 else self.distribution
        kind = "truncated_normal" if kind == "orthogonal" and len(shape) < 2 else kind
        return (kind, self.variable_seed(place), tuple(shape), str(dtype))

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
        variable.assign(self._draw(init, shape, variable.dtype))
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

    def _draw(self, init: keras.initializers.Initializer, shape: tuple[int, ...], dtype: Any) -> Any:
        """``init(shape, dtype=dtype)``; on TensorFlow from the kept unit draw
        when the last variable drawn had the same seed, shape and dtype (see
        the module docstring; the unit draw is then let go: a kernel is
        rewritten once), else from a new unit draw that is kept. Other
        backends and dtypes call ``init`` each time."""
        if keras.backend.backend() != "tensorflow" or keras.backend.standardize_dtype(dtype) != "float32":
            return init(shape, dtype=dtype)
        kind, unit = self._unit_for(init, shape, dtype, keep=False)
        return _scaled(unit, init, kind, shape, dtype)

    def draft(self, shape: tuple[int, ...], variance: float, place: str, dtype: Any) -> np.ndarray | None:
        """The values ``write`` would give a variable (float64), computed
        without writing them (TensorFlow float32 only, else None); the unit
        draw is kept for the ``write`` that follows.

        The same TensorFlow ops as the write's, then a float64 cast, read
        through a view (NumPy's own arrays of this size cost more than the
        arithmetic on them: fresh pages for each): read-only, and a copy
        where the tensor lives on an accelerator."""
        if keras.backend.backend() != "tensorflow" or keras.backend.standardize_dtype(dtype) != "float32":
            return None
        init = self.initializer(shape, variance, place)
        kind, unit = self._unit_for(init, shape, dtype, keep=True)
        return np.asarray(keras.ops.cast(_scaled(unit, init, kind, shape, dtype), "float64"))

    def _unit_for(
        self, init: keras.initializers.Initializer, shape: tuple[int, ...], dtype: Any, keep: bool
    ) -> tuple[str, Any]:
        """``(kind, unit draw)`` for ``init``: the kept one when the last
        variable drawn had the same key (let go unless ``keep``), else the one
        made ahead or a new one, kept."""
        kind = "orthogonal" if isinstance(init, keras.initializers.Orthogonal) else init.distribution
        key = (kind, init.seed, shape, str(dtype))
        if self._unit is not None and self._unit[0] == key:
            unit = self._unit[1]
            self._unit = self._unit if keep else None
            return kind, unit
        unit = self._ahead.take(key) if self._ahead is not None else None
        if unit is None:
            unit = _unit_draw(kind, init.seed, shape, dtype)
        self._unit = (key, unit)
        return kind, unit

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


_TRUNCATED_STDDEV = 0.87962566103423978
"""The standard deviation of a standard normal truncated to [-2, 2] (Keras' constant)."""


def _unit_draw(kind: str, seed: int, shape: tuple[int, ...], dtype: Any) -> Any:
    """The draw Keras' initializer of ``kind`` scales: a standard truncated or
    untruncated normal, a uniform on [0, 1), or an orthogonal matrix of gain 1.

    The random ones come straight from TensorFlow's stateless kernel, seeded
    as Keras seeds an integer seed (``[seed mod (2**31 - 2), 0]``, the
    device's algorithm):
    ``tf.random.stateless_*`` would then compute ``rnd * 1.0 + 0.0``, two
    passes over the kernel that change no value (tested against Keras)."""
    if kind == "orthogonal":
        return keras.initializers.Orthogonal(gain=1.0, seed=seed)(shape, dtype=dtype)
    import tensorflow as tf

    raw_op = {
        "truncated_normal": tf.raw_ops.StatelessTruncatedNormalV2,
        "untruncated_normal": tf.raw_ops.StatelessRandomNormalV2,
    }.get(kind, tf.raw_ops.StatelessRandomUniformV2)
    # Keras' TensorFlow backend folds a seed into int32 as floormod(seed, 2**31 - 2).
    seed_pair = tf.constant([seed % (2**31 - 2), 0], dtype=tf.int32)
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed_pair)
    return raw_op(shape=shape, key=key, counter=counter, alg=_AUTO_SELECT, dtype=dtype)


_AUTO_SELECT = 3
"""TensorFlow's RNG algorithm "auto_select" (the device's own choice), the one ``tf.random.stateless_*`` use."""


def _drawer_on(device: str | None) -> Any:
    """``_unit_draw`` of a key, placed on ``device`` (from any thread)."""
    import tensorflow as tf

    def draw(key: tuple) -> Any:
        with tf.device(device) if device else contextlib.nullcontext():
            return _unit_draw(*key)

    return draw


def _current_device() -> str | None:
    """The device this thread's ops run on (a ``tf.device`` scope is per
    thread, so the background draws are placed there explicitly)."""
    try:
        return str(keras.ops.convert_to_tensor(0.0).device) or None
    except (AttributeError, RuntimeError):
        return None
