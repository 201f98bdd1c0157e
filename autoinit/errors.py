"""Exceptions and warnings raised by AutoInit."""

from __future__ import annotations

__all__ = [
    "AutoInitError",
    "ModelConfigError",
    "UnsafeConfigError",
    "EstimationError",
    "JsonLimitError",
    "LegacyConfigError",
    "ParameterBoundError",
    "TrainingDataError",
    "UploadTooLargeError",
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


class UploadTooLargeError(ModelConfigError):
    """The upload (or the config inside it) is larger than the limit; the API
    answers 413."""


class JsonLimitError(ModelConfigError):
    """The JSON is nested deeper, or holds more values, than allowed."""


class ParameterBoundError(ModelConfigError):
    """The parameters of a config cannot be bounded, or exceed the limit."""


class LegacyConfigError(ModelConfigError):
    """A tf.keras 2 config cannot be expressed as a Keras 3 config."""


class EstimationError(AutoInitError, ValueError):
    """An estimator cannot compute the output distribution of a layer."""


class TrainingDataError(AutoInitError, ValueError):
    """Training data (an ``.npz`` of ``x`` and ``y``) cannot be read safely or
    does not fit the model's input and output."""


class UnsupportedLayerWarning(UserWarning):
    """No estimator is known for a layer class: it is treated as pass-through."""
