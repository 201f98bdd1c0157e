"""Exceptions and warnings raised by AutoInit."""

from __future__ import annotations

__all__ = [
    "AutoInitError",
    "ModelConfigError",
    "UnsafeConfigError",
    "EstimationError",
    "TrainingDataError",
    "UnsupportedLayerWarning",
]


class AutoInitError(Exception):
    """Base class of every error AutoInit raises on purpose."""


class ModelConfigError(AutoInitError, ValueError):
    """A model, config or JSON string cannot be turned into a Keras model.

    The message says what was expected, what was received and, where it
    concerns one layer, that layer's name and class.
    """


class UnsafeConfigError(ModelConfigError):
    """A config asks for something that could execute code (Lambda, unknown
    modules, ...) and is refused before Keras sees it."""


class EstimationError(AutoInitError, ValueError):
    """An estimator cannot compute the output distribution of a layer."""


class TrainingDataError(AutoInitError, ValueError):
    """Training data (an ``.npz`` of ``x`` and ``y``) cannot be read safely or
    does not fit the model's input and output."""


class UnsupportedLayerWarning(UserWarning):
    """No estimator is known for a layer class: it is treated as pass-through."""
