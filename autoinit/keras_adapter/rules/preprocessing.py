"""Rules for the preprocessing family (as the layers act in training mode)."""

from __future__ import annotations

import numpy as np

from autoinit.estimators.core import estimate_rescaling
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


@rule("Rescaling")
def rescaling(ctx: LayerContext) -> SignalMoments:
    scale = float(np.mean(ctx.layer.scale))
    offset = float(np.mean(ctx.layer.offset))
    return estimate_rescaling(ctx.x, scale, offset)
