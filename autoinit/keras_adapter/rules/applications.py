"""Rules for layers that ``keras.applications`` models define in their own
modules, not in ``keras.layers`` (registered as ``"<module>.<class>"``, and
listed in ``autoinit.keras_facts.APPLICATION_LAYERS`` for the upload).
"""

from __future__ import annotations

import keras
import numpy as np

from autoinit.estimators.preprocessing import estimate_affine
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments


@rule("keras.src.applications.convnext.LayerScale")
def layer_scale(ctx: LayerContext) -> SignalMoments:
    """ConvNeXt's ``y = gamma * x`` per channel, ``gamma`` as the model set it
    (``init_values``, 1e-6 in ConvNeXt: each residual branch starts near zero,
    by design). AutoInit keeps that scale: rescaling ``gamma`` to the target
    would undo the architecture's choice; the layer records no target."""
    gamma = np.asarray(keras.ops.convert_to_numpy(ctx.layer.gamma), np.float64)
    return estimate_affine(ctx.x, gamma, 0.0, tuple(ctx.output_shape[1:]))
