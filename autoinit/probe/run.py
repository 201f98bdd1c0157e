"""``probe``: one Gaussian-input probe of one model."""

from __future__ import annotations

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.keras_adapter.graph import functional_of
from autoinit.probe.backward import probe_backward
from autoinit.probe.forward import probe_compiled, probe_forward
from autoinit.probe.inputs import gaussian_inputs

__all__ = ["probe"]


class _StateGuard:
    """Restores non-trainable state (BN moving stats, dropout RNG) after a
    training-mode pass, and seeds dropout RNGs for reproducibility."""

    def __init__(self, model: keras.Model, seed: int) -> None:
        self.variables = list(model.non_trainable_variables)
        self.saved = [v.numpy() for v in self.variables]
        for i, v in enumerate(self.variables):
            if v.path.endswith("seed_generator_state"):
                v.assign(np.array([seed + 7919 * i, 0], dtype=v.dtype))

    def restore(self) -> None:
        for v, value in zip(self.variables, self.saved):
            v.assign(value)


def probe(
    model: keras.Model,
    batch_size: int = 256,
    seed: int = 0,
    input_mean: float = 0.0,
    input_var: float = 1.0,
    backward: bool = False,
    compiled: bool = False,
) -> list[dict]:
    """Measure each layer's output mean/variance on Gaussian input.

    Args:
        model: a Functional or Sequential Keras model (nested models are
            descended into; their layers are named ``outer/inner``).
        batch_size: examples in the probe batch.
        seed: seeds the input and the dropout masks.
        input_mean, input_var: the Gaussian input's moments.
        backward: also measure ``grad_var``, the variance of the gradient of
            ``L = sum(output * R)`` (``R`` standard normal, fixed) with
            respect to each layer's output.
        compiled: run the forward probe as one TensorFlow graph, traced on
            the first call per model and input shape and cached (weakly) with
            the model. Later calls cost close to one compiled forward pass;
            the first costs a trace, several eager probes' worth, so this
            pays off only when the same model is probed many times. Not
            combined with ``backward``.

    Returns:
        One JSON-serializable dict per layer call in topological order:
        ``name``, ``class_name``, ``mean``, ``var``, ``has_weights``,
        ``output_shape`` (and ``grad_var``). Overflowed values are None.
    """
    functional_of(model)
    if compiled and backward:
        raise AutoInitError("probe(compiled=True) runs the forward probe only. Received: backward=True")
    inputs = gaussian_inputs(model, batch_size, seed, input_mean, input_var)
    guard = _StateGuard(model, seed)
    try:
        if backward:
            return probe_backward(model, inputs, seed)
        if compiled:
            return probe_compiled(model, inputs)
        return probe_forward(model, inputs)
    finally:
        guard.restore()
