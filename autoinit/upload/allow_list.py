"""What an uploaded config may name, derived from `autoinit.keras_facts`.

Serialized objects (dicts with ``class_name``) are accepted only as exact
``(module, class_name)`` pairs of `ALLOWED_CLASSES` (tf.keras 2 entries
without ``module`` by class name, `LEGACY_CLASSES`); a few classes are
refused whatever module they claim, each with its reason
(`REFUSED_CLASSES`); activations only by the names AutoInit models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from autoinit import keras_facts

__all__ = [
    "ACTIVATION_FUNCTION_MODULES",
    "ALLOWED_CLASSES",
    "KERAS_ACTIVATIONS",
    "LEGACY_CLASSES",
    "LAYER_CLASSES",
    "MODEL_CLASSES",
    "REFUSED_CLASSES",
    "SPECIAL_MARKERS",
    "WRAPPED_LAYER_KEYS",
    "allowed_classes",
    "is_activation_key",
    "is_identifier",
    "is_keras_object_key",
    "is_path_key",
    "why_refused",
]

MODEL_CLASSES = keras_facts.MODEL_CLASSES
LAYER_CLASSES = keras_facts.ACCEPTED_LAYERS
INITIALIZER_CLASSES = keras_facts.INITIALIZER_CLASSES
REGULARIZER_CLASSES = keras_facts.REGULARIZER_CLASSES
CONSTRAINT_CLASSES = keras_facts.CONSTRAINT_CLASSES
DTYPE_POLICY_CLASSES = keras_facts.DTYPE_POLICY_CLASSES


def allowed_classes() -> dict[str, frozenset[str]]:
    """``module -> class names`` as the facts stand now (tests extend OP_NODES)."""
    table = dict(keras_facts.KERAS_MODULES)
    for extra in (
        keras_facts.OP_NODES,
        keras_facts.APPLICATION_LAYERS,
        keras_facts.HUB_BACKBONES,
        keras_facts.HUB_UPLOAD_LAYERS,
    ):
        for module, names in extra.items():
            table[module] = table.get(module, frozenset()) | names
    return table


#: ``module -> class names`` accepted: Keras' own classes that AutoInit
#: models or knows to be harmless, the op nodes and application layers it
#: models, and the vetted keras_hub backbones and layers.
ALLOWED_CLASSES: Mapping[str, frozenset[str]] = allowed_classes()

#: Class names accepted on entries without a ``module`` key (tf.keras 2).
LEGACY_CLASSES = (
    MODEL_CLASSES
    | LAYER_CLASSES
    | INITIALIZER_CLASSES
    | REGULARIZER_CLASSES
    | CONSTRAINT_CLASSES
    | DTYPE_POLICY_CLASSES
    | keras_facts.LEGACY_DTYPE_POLICY_CLASSES
)

#: Activation names accepted (the ones AutoInit models).
KERAS_ACTIVATIONS = keras_facts.ACTIVATIONS
ACTIVATION_FUNCTION_MODULES = keras_facts.ACTIVATION_FUNCTION_MODULES

_CODE = "carry Python code"
_TF_OP = "name a TensorFlow function to call (tf.keras 2 op layers)"
_FOREIGN = "wrap code from another framework"
_FILES = "can read files from the server's disk (vocabularies)"

#: Refused whatever module they claim, each with the reason shown to users.
REFUSED_CLASSES: Mapping[str, str] = {
    "Lambda": f"Lambda layers {_CODE}",
    "TFOpLambda": f"TFOpLambda layers {_TF_OP}",
    "SlicingOpLambda": f"SlicingOpLambda layers {_TF_OP}",
    "TFSMLayer": "TFSMLayer layers load a SavedModel from the server's disk",
    "TorchModuleWrapper": f"TorchModuleWrapper layers {_FOREIGN}",
    "JaxLayer": f"JaxLayer layers {_FOREIGN}",
    "FlaxLayer": f"FlaxLayer layers {_FOREIGN}",
    "StringLookup": f"StringLookup layers {_FILES}",
    "IntegerLookup": f"IntegerLookup layers {_FILES}",
    "TextVectorization": f"TextVectorization layers {_FILES}",
    "Hashing": "Hashing preprocessing layers are not supported",
    "HashedCrossing": "HashedCrossing preprocessing layers are not supported",
}

#: ``class_name`` markers Keras turns into lambdas, tensors, arrays, ...
SPECIAL_MARKERS = {
    "__lambda__": "a serialized Python lambda",
    "__numpy__": "a serialized NumPy array",
    "__tensor__": "a serialized tensor",
    "__typespec__": "a serialized TensorFlow TypeSpec",
    "__bytes__": "serialized bytes",
    "__slice__": "a serialized slice",
    "__ellipsis__": "a serialized Ellipsis",
}

_PATH_KEYS = frozenset(
    {
        "vocabulary",
        "filepath",
        "file_path",
        "path",
        "filename",
        "file_name",
        "directory",
        "dirname",
        "url",
        "uri",
    }
)
_PATH_KEY_SUFFIXES = ("_path", "_file", "_filepath", "_dir", "_directory", "_url", "_uri")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Keys whose values sit in a layer's position: wrapped layers, RNN cells, a
#: model's layers.
WRAPPED_LAYER_KEYS = frozenset(keras_facts.WRAPPED_LAYER_KEYS) | {"cells", "layers"}


def is_identifier(value: str) -> bool:
    return _IDENTIFIER.fullmatch(value) is not None


def is_activation_key(key: str | int | None) -> bool:
    return isinstance(key, str) and (key == "activation" or key.endswith("_activation"))


def is_keras_object_key(key: str | int | None) -> bool:
    return isinstance(key, str) and key.endswith(("initializer", "regularizer", "constraint"))


def is_path_key(key: str | int | None) -> bool:
    return isinstance(key, str) and (key in _PATH_KEYS or key.endswith(_PATH_KEY_SUFFIXES))


def why_refused(class_name: str) -> str:
    """`` (reason)`` for a Keras class uploads may not use yet, else ``""``."""
    reason = keras_facts.CONVERTER_ONLY_LAYERS.get(class_name)
    return f" ({reason})" if reason else ""
