"""Import path kept for users of the original package:
``from autoinit.estimators.estimate_layer_output_distribution import LayerOutputDistributionEstimator``."""

from autoinit.estimators.base import (
    LayerOutputDistributionEstimator,
    PassThroughOutputDistributionEstimator,
)

__all__ = ["LayerOutputDistributionEstimator", "PassThroughOutputDistributionEstimator"]
