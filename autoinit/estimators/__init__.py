"""Mean/variance mappings ``g_layer`` (paper, Appendix A), one module per Keras
layer family. Everything here is NumPy/SciPy: functions of input
``SignalMoments`` and plain layer facts, testable without TensorFlow."""

from autoinit.estimators.base import LayerOutputDistributionEstimator

__all__ = ["LayerOutputDistributionEstimator"]
