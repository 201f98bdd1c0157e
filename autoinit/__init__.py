"""AutoInit: analytic signal-preserving weight initialization for Keras 3.

``from autoinit import AutoInit`` needs no TensorFlow until a model is
initialized; ``autoinit.plot`` and ``autoinit.upload`` never import it.
"""

from autoinit.autoinit import AutoInit
from autoinit.errors import (
    AutoInitError,
    EstimationError,
    ModelConfigError,
    UnsafeConfigError,
    UnsupportedLayerWarning,
)
from autoinit.estimators.base import (
    LayerOutputDistributionEstimator,
    PassThroughOutputDistributionEstimator,
)
from autoinit.moments import SignalMoments

__version__ = "0.1.0"

__all__ = [
    "AutoInit",
    "AutoInitError",
    "AutoInitVisualizer",
    "EstimationError",
    "LayerOutputDistributionEstimator",
    "ModelConfigError",
    "PassThroughOutputDistributionEstimator",
    "SignalMoments",
    "UnsafeConfigError",
    "UnsupportedLayerWarning",
]


def __getattr__(name: str):
    # The visualizer needs TensorFlow (it runs probes): load it on first use.
    if name == "AutoInitVisualizer":
        from autoinit.visualize import AutoInitVisualizer

        return AutoInitVisualizer
    raise AttributeError(f"module 'autoinit' has no attribute {name!r}")
