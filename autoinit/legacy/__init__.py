"""Accept tf.keras 2 model configs (TF 2.4-2.15 `model.to_json()`) in Keras 3.

Keras 3 refuses most such configs: nested models are "Functional" classes
from `tf_keras`/`keras.engine`, inbound nodes are Keras 2 lists such as
``[[["dense", 0, 0, {}]]]``, and several layer arguments were renamed or
removed. This module rewrites the config, dict in, dict out, in pure Python
(it also runs in the small API process, which has no Keras)::

    import json, keras
    from autoinit.legacy import convert_legacy_config, is_legacy_config

    if is_legacy_config(config):
        config = convert_legacy_config(config)
    model = keras.models.model_from_json(json.dumps(config))

`to_legacy_config` goes the other way for the initializers only: it writes
the initializers AutoInit chose back into the user's original tf.keras
config, so a Keras 2 user can rebuild the initialized model.

Argument changes (Keras 2 -> Keras 3.15), all listed in `autoinit.legacy.arguments`:
dropped always: Embedding `input_length`; MultiHeadAttention `query_shape`,
`key_shape`, `value_shape`, `softmax_robust_masking`; SimpleRNN/GRU/LSTM
`implementation`; BatchNormalization `fused`, `virtual_batch_size`,
`adjustment`; SpatialDropout `noise_shape` and `trainable` (Keras 3 rejects
both); the Random* augmentation layers' `rng_type`; SeparableConv `kernel_initializer/regularizer/constraint` (unused in
Keras 2 too); any layer's
`batch_input_shape`, `batch_size`, `input_dtype`, `dynamic` (a Sequential's
first-layer `batch_input_shape` becomes an InputLayer). Dropped only at
their default, refused otherwise: `time_major` (False), Depthwise/Separable/
Transpose conv `groups` (1), ConvLSTM `unroll` (False), Bidirectional
`num_constants` (0). Renamed: InputLayer `batch_input_shape` -> `batch_shape`,
LeakyReLU `alpha` -> `negative_slope`; BatchNormalization `axis` [a] -> a
(Keras 3 takes one axis). ThresholdedReLU(theta) becomes
ReLU(threshold=theta). Kept: Conv `groups`, Dropout `noise_shape`,
BatchNormalization `renorm*`. Layer `dtype` strings and Keras 2 `Policy`
dicts become `DTypePolicy` dicts.

Modules: ``detection`` (`is_legacy_config`), ``arguments`` (the argument
rules), ``converter`` (`convert_legacy_config`), ``graph`` (inbound nodes),
``reverse`` (`to_legacy_config`), ``errors`` (`LegacyConfigError`).
"""

from __future__ import annotations

from autoinit.errors import LegacyConfigError
from autoinit.legacy.converter import convert_legacy_config
from autoinit.legacy.detection import is_legacy_config
from autoinit.legacy.reverse import INITIALIZER_ATTRIBUTES, to_legacy_config

__all__ = [
    "INITIALIZER_ATTRIBUTES",
    "LegacyConfigError",
    "convert_legacy_config",
    "is_legacy_config",
    "to_legacy_config",
]
