"""Check uploaded model files before Keras sees them (``autoinit.upload``).

Uploads come from anyone who can reach the service. Keras' ``safe_mode`` is a
denylist: it refuses Python lambdas, yet a ``Lambda`` naming a public Keras
function still loads, ``StringLookup`` reads a vocabulary file from the
server's disk, and several CVEs (CVE-2025-1550, CVE-2025-9905, CVE-2025-9906)
got code past it. So this package walks the whole JSON config itself and
accepts only what is on an allow-list:

* serialized objects (dicts with ``class_name``) whose ``(module, class_name)``
  pair is a Keras layer, model, initializer, regularizer, constraint or dtype
  policy that AutoInit supports (``ALLOWED_CLASSES``, derived from
  `autoinit.keras_facts`), plus the few pairs the caller adds with
  ``extra_allowed``;
* a vetted keras_hub backbone as the model itself, and vetted keras_hub layers
  in a model (``keras_facts.HUB_BACKBONES``, ``HUB_UPLOAD_LAYERS``), with every
  argument checked by name and kind (``hub_arguments``) and the parameters
  counted from the arguments (``hub_sizes``);
* activations given by name (``"relu"``), or as a Keras activation function
  object (``{"module": "keras.activations", "class_name": "function", ...}``);
* plain JSON values, except strings starting with ``"__"`` (Keras' markers for
  lambdas, tensors, NumPy arrays, ...) and strings under file-ish keys
  (``vocabulary``, ``filepath``, ``*_path``, ...).

Everything else is refused with an `UnsafeConfigError` whose message names
what was found, the JSON path to it and the layer that holds it.

The package is pure standard library: it runs in the API process, before any
worker (and before TensorFlow) touches the upload.

Pipeline: ``parse_upload`` (bytes -> dict) -> the legacy converter (tf.keras 2
configs -> Keras 3) -> ``validate_model_config`` -> Keras. Because the legacy
converter runs in between, ``validate_model_config`` also accepts entries
without a ``module`` key (tf.keras 2 style) as long as their ``class_name`` is
allow-listed.

Example:
    >>> config = parse_upload(request_body, "model.keras")
    >>> summary = validate_model_config(config)
    >>> summary.num_layers
    12

Modules: ``limits`` (`UploadLimits`), ``allow_list`` (the tables),
``walker`` (`validate_model_config`), ``structure`` (JSON types, with
paths), ``arguments`` (count arguments), ``params`` (the parameter bound),
``hub_arguments`` and ``hub_sizes`` (keras_hub classes: their arguments, and
their sizes from them),
``formats`` (`is_hdf5`), ``json_text`` (`loads_json`, bounded while
parsing), ``archive`` (``.keras`` reading), ``parse`` (`parse_upload`).
"""

from __future__ import annotations

from autoinit.upload.allow_list import (
    ALLOWED_CLASSES,
    KERAS_ACTIVATIONS,
    LEGACY_CLASSES,
    REFUSED_CLASSES,
)
from autoinit.upload.archive import read_keras_archive_config
from autoinit.upload.formats import is_hdf5
from autoinit.upload.json_text import JsonLimitError, loads_json
from autoinit.upload.limits import UploadLimits, UploadTooLargeError
from autoinit.upload.parse import drop_compile_config, parse_upload
from autoinit.upload.walker import ConfigSummary, validate_model_config

__all__ = [
    "ALLOWED_CLASSES",
    "KERAS_ACTIVATIONS",
    "LEGACY_CLASSES",
    "REFUSED_CLASSES",
    "ConfigSummary",
    "JsonLimitError",
    "UploadLimits",
    "UploadTooLargeError",
    "drop_compile_config",
    "is_hdf5",
    "loads_json",
    "parse_upload",
    "read_keras_archive_config",
    "validate_model_config",
]
