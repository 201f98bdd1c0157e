"""Turns a Keras activation (function, name or layer) into an estimator
``Activation``: the NumPy definition for Keras' named activations, or the
Keras callable itself evaluated on NumPy arrays for anything else."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from autoinit.estimators.activations import (
    ACTIVATIONS,
    AXIS_ACTIVATIONS,
    Activation,
    callable_activation,
    elu_family,
    relu_family,
)

__all__ = ["resolve_activation", "activation_name"]


def activation_name(fn: Any) -> str | None:
    """Keras' registered name of ``fn`` when it is a built-in activation."""
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__name__", None)
    if name and _known(name) and keras.activations.get(name) is fn:
        return name
    return None


def _known(name: str) -> bool:
    try:
        keras.activations.get(name)
        return True
    except (ValueError, TypeError):
        return False


def resolve_activation(fn: Any) -> Activation | str:
    """An ``Activation`` for elementwise ``fn``, or the name of an axis-wise one
    (``"softmax"``, ``"log_softmax"``, ``"sparsemax"``, ``"glu"``)."""
    if fn is None:
        return ACTIVATIONS["linear"]
    if isinstance(fn, Activation):
        return fn
    if isinstance(fn, keras.layers.Layer):
        return _layer_activation(fn)
    if isinstance(fn, keras.Operation):
        return callable_activation(_numpy_wrapper(fn), _operation_key(fn))
    name = activation_name(fn)
    if name in AXIS_ACTIVATIONS:
        return name
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    return callable_activation(_numpy_wrapper(fn), ("callable", id(fn)))


def _layer_activation(layer: Any) -> Activation | str:
    kind = type(layer).__name__
    if kind == "ReLU":
        return relu_family(
            float(layer.negative_slope),
            None if layer.max_value is None else float(layer.max_value),
            float(layer.threshold),
        )
    if kind == "LeakyReLU":
        return relu_family(negative_slope=float(layer.negative_slope))
    if kind == "PReLU":
        alpha = float(np.mean(keras.ops.convert_to_numpy(layer.alpha)))
        return relu_family(negative_slope=alpha)
    if kind == "ELU":
        return elu_family(float(layer.alpha))
    if kind == "Softmax":
        return "softmax"
    return resolve_activation(getattr(layer, "activation", None))


def _operation_key(op: Any) -> tuple:
    """An op node's identity for caching: its class and arguments, not its
    name or address (an address may be reused by a later op)."""
    config = {k: v for k, v in op.get_config().items() if k != "name"}
    return ("op", type(op).__module__, type(op).__name__, repr(sorted(config.items())))


def _numpy_wrapper(fn: Any):
    def evaluate(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float32).reshape(-1)
        y = keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(flat)))
        return np.asarray(y, dtype=np.float64).reshape(np.shape(x))

    return evaluate
