"""The error the tf.keras 2 converter raises."""

from __future__ import annotations

from autoinit.errors import ModelConfigError

__all__ = ["LegacyConfigError"]


class LegacyConfigError(ModelConfigError):
    """A tf.keras 2 config cannot be expressed as a Keras 3 config."""
