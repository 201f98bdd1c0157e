"""The weight constraint behind ``weight_init_config["constrain_weights"]``."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["CenteredScale"]


@keras.saving.register_keras_serializable(package="autoinit")
class CenteredScale(keras.constraints.Constraint):
    """Keeps a weight tensor at zero mean and a fixed standard deviation.

    After each update the weights are centred and rescaled to ``stddev``, so
    the signal-preserving scale AutoInit chose holds throughout training.

    Args:
        stddev: the standard deviation to keep.
    """

    def __init__(self, stddev: float) -> None:
        self.stddev = float(stddev)

    def __call__(self, w):
        centred = w - ops.mean(w)
        return centred * (self.stddev / (ops.std(centred) + 1e-12))

    def get_config(self) -> dict:
        return {"stddev": self.stddev}
