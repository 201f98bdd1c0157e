"""Named baseline initializations that ``compare`` measures next to AutoInit."""

from __future__ import annotations

import keras
import numpy as np

from autoinit.errors import AutoInitError
from autoinit.options import BASELINE_NAMES

__all__ = ["BASELINES", "apply_baseline"]

#: The named baselines: every option name but ``"default"`` (the model's own init).
BASELINES = tuple(name for name in BASELINE_NAMES if name != "default")


def apply_baseline(model: keras.Model, name: str, seed: int = 0) -> None:
    """Redraw every kernel (not recurrent kernels) with Keras initializer
    ``name`` (seeded), biases to zero: a named baseline for ``compare``."""
    if name not in BASELINES:
        raise AutoInitError(f"Unknown baseline. Expected one of {BASELINES} or 'default'. Received: {name!r}")
    for i, variable in enumerate(model.trainable_variables):
        leaf = variable.path.rsplit("/", 1)[-1]
        if leaf in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            init = keras.initializers.get({"class_name": name, "config": {"seed": seed + i}})
            variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
        elif leaf == "bias":
            variable.assign(np.zeros(tuple(variable.shape), dtype=variable.dtype))
