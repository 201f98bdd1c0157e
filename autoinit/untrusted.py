"""Check uploaded model files before Keras sees them.

Uploads come from anyone who can reach the service. Keras' ``safe_mode`` is a
denylist: it refuses Python lambdas, yet a ``Lambda`` naming a public Keras
function still loads, ``StringLookup`` reads a vocabulary file from the
server's disk, and several CVEs (CVE-2025-1550, CVE-2025-9905, CVE-2025-9906)
got code past it. So this module walks the whole JSON config itself and
accepts only what is on an allow-list:

* serialized objects (dicts with ``class_name``) whose ``(module, class_name)``
  pair is a Keras layer, model, initializer, regularizer, constraint or dtype
  policy that AutoInit supports (the ``ALLOWED_CLASSES`` table below, derived
  from `autoinit.keras_facts`), plus the few pairs the caller adds with
  ``extra_allowed``;
* activations given by name (``"relu"``), or as a Keras activation function
  object (``{"module": "keras.activations", "class_name": "function", ...}``);
* plain JSON values, except strings starting with ``"__"`` (Keras' markers for
  lambdas, tensors, NumPy arrays, ...) and strings under file-ish keys
  (``vocabulary``, ``filepath``, ``*_path``, ...).

Everything else is refused with an `UnsafeConfigError` whose message names
what was found, the JSON path to it and the layer that holds it.

The module is pure standard library: it runs in the API process, before any
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
"""

from __future__ import annotations

import io
import json
import math
import re
import struct
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import AbstractSet, Any, Mapping

from autoinit import keras_facts
from autoinit.errors import ModelConfigError, UnsafeConfigError

__all__ = [
    "ALLOWED_CLASSES",
    "KERAS_ACTIVATIONS",
    "REFUSED_CLASSES",
    "ConfigSummary",
    "UploadLimits",
    "UploadTooLargeError",
    "drop_compile_config",
    "parse_upload",
    "read_keras_archive_config",
    "validate_model_config",
]


class UploadTooLargeError(ModelConfigError):
    """The upload (or the config inside it) is larger than the limit; the API
    answers 413."""


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on what one upload may ask of the service.

    Args:
        max_bytes: size of the raw upload.
        max_layers: layers in the config, counting those inside nested models
            and wrappers (``Bidirectional``, ``TimeDistributed``, RNN cells).
        max_params: bound on the rough parameter estimate (see
            `ConfigSummary.estimated_params`).
        max_depth: nesting depth of JSON objects and arrays.
        max_archive_member_bytes: uncompressed size of ``config.json`` inside
            a ``.keras`` archive.
        max_compression_ratio: uncompressed / compressed size of
            ``config.json`` inside a ``.keras`` archive (zip-bomb guard).
        max_archive_members: number of files in a ``.keras`` archive.
    """

    max_bytes: int = 50_000_000
    max_layers: int = 5000
    max_params: int = 200_000_000
    max_depth: int = 64
    max_archive_member_bytes: int = 20_000_000
    max_compression_ratio: float = 200.0
    max_archive_members: int = 1000


@dataclass(frozen=True)
class ConfigSummary:
    """What `validate_model_config` counted while walking a config.

    Args:
        num_layers: layers and models, nested ones included.
        max_depth: deepest JSON nesting seen (the root object is depth 1).
        class_counts: how many layers/models of each ``class_name``.
        estimated_params: rough parameter count, from numbers in the config
            alone (``units``, ``filters``, ``kernel_size``, ``input_dim`` ...
            times the input width recorded in ``build_config``, or 1 where
            no ``build_config`` is given). It catches obvious bombs such as
            ``Embedding(10**9, 10**3)``; it is not an upper bound, so the
            worker must still check ``model.count_params()`` after building.
    """

    num_layers: int
    max_depth: int
    class_counts: Mapping[str, int] = field(default_factory=dict)
    estimated_params: int = 0


# --- The allow-list -----------------------------------------------------------

MODEL_CLASSES = keras_facts.MODEL_CLASSES
LAYER_CLASSES = keras_facts.ACCEPTED_LAYERS
INITIALIZER_CLASSES = keras_facts.INITIALIZER_CLASSES
REGULARIZER_CLASSES = keras_facts.REGULARIZER_CLASSES
CONSTRAINT_CLASSES = keras_facts.CONSTRAINT_CLASSES
DTYPE_POLICY_CLASSES = keras_facts.DTYPE_POLICY_CLASSES


def _allowed_classes() -> dict[str, frozenset[str]]:
    table = dict(keras_facts.KERAS_MODULES)
    for module, names in keras_facts.OP_NODES.items():
        table[module] = table.get(module, frozenset()) | names
    return table


#: ``module -> class names`` accepted: Keras' own classes that AutoInit
#: models or knows to be harmless, and the op nodes it models.
ALLOWED_CLASSES: Mapping[str, frozenset[str]] = _allowed_classes()

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
_SPECIAL_MARKERS = {
    "__lambda__": "a serialized Python lambda",
    "__numpy__": "a serialized NumPy array",
    "__tensor__": "a serialized tensor",
    "__typespec__": "a serialized TensorFlow TypeSpec",
    "__bytes__": "serialized bytes",
    "__slice__": "a serialized slice",
    "__ellipsis__": "a serialized Ellipsis",
}

_PATH_KEYS = frozenset(
    {"vocabulary", "filepath", "file_path", "path", "filename", "file_name",
     "directory", "dirname", "url", "uri"}
)
_PATH_KEY_SUFFIXES = ("_path", "_file", "_filepath", "_dir", "_directory",
                      "_url", "_uri")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WRAPPED_LAYER_KEYS = frozenset({"layer", "backward_layer", "cell", "cells",
                                 "layers"})


# --- Walking a config ---------------------------------------------------------


def validate_model_config(
    config: Mapping[str, Any],
    limits: UploadLimits = UploadLimits(),
    *,
    extra_allowed: Mapping[str, AbstractSet[str]] | None = None,
) -> ConfigSummary:
    """Walk a Keras model config and refuse anything not allow-listed.

    Args:
        config: the dict ``json.loads(model.to_json())`` gives (Keras 3), or a
            tf.keras 2 config whose entries lack ``module``.
        limits: layer count, JSON depth and parameter-estimate bounds.
        extra_allowed: further ``module -> class names`` to accept, e.g. the
            library's own registered constraint. Their ``registered_name`` may
            be ``"<top package>>ClassName"``, as
            ``keras.saving.register_keras_serializable`` writes it.

    Returns:
        A `ConfigSummary` of what was counted.

    Raises:
        UnsafeConfigError: something that could run code or read files, or a
            class not on the allow-list; the message gives the JSON path.
        ModelConfigError: the config is not a model config or exceeds limits.
    """
    if not isinstance(config, Mapping):
        raise ModelConfigError(
            "Expected a model config (a JSON object with 'class_name' and "
            f"'config'). Received: {type(config).__name__}."
        )
    top_class = config.get("class_name")
    if top_class not in MODEL_CLASSES:
        raise ModelConfigError(
            "Expected a model config whose class_name is one of "
            f"{sorted(MODEL_CLASSES)}. Received: class_name={top_class!r}."
        )
    walker = _ConfigWalker(limits, extra_allowed or {})
    walker.visit(config, (), 1, None, None)
    return ConfigSummary(
        num_layers=walker.num_layers,
        max_depth=walker.max_depth,
        class_counts=dict(walker.class_counts),
        estimated_params=walker.estimated_params,
    )


_Path = tuple[str | int, ...]
_Layer = tuple[str, str] | None  # (layer name, class name) of the holder


def _format_path(path: _Path) -> str:
    if not path:
        return "the top level"
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _where(path: _Path, layer: _Layer) -> str:
    place = f"at {_format_path(path)}"
    if layer is not None:
        place += f", in layer {layer[0]!r} ({layer[1]})"
    return f"({place})"


def _is_activation_key(key: str | int | None) -> bool:
    return isinstance(key, str) and (
        key == "activation" or key.endswith("_activation")
    )


def _is_keras_object_key(key: str | int | None) -> bool:
    return isinstance(key, str) and key.endswith(
        ("initializer", "regularizer", "constraint")
    )


def _is_path_key(key: str | int | None) -> bool:
    return isinstance(key, str) and (
        key in _PATH_KEYS or key.endswith(_PATH_KEY_SUFFIXES)
    )


class _ConfigWalker:
    """One pass over a config; holds the counts and the allow-list."""

    def __init__(
        self, limits: UploadLimits, extra: Mapping[str, AbstractSet[str]]
    ) -> None:
        self.limits = limits
        self.extra = {m: frozenset(names) for m, names in extra.items()}
        self.allowed = _allowed_classes()  # read now: facts tests extend OP_NODES
        for module, names in self.extra.items():
            self.allowed[module] = self.allowed.get(module, frozenset()) | names
        self.num_layers = 0
        self.max_depth = 0
        self.estimated_params = 0
        self.class_counts: Counter[str] = Counter()

    def visit(
        self, value: Any, path: _Path, depth: int, key: str | int | None,
        layer: _Layer,
    ) -> None:
        if _is_activation_key(key):
            self._check_activation(value, path, layer)
        if isinstance(value, Mapping):
            self._enter(depth, path, layer)
            self._visit_dict(value, path, depth, key, layer)
        elif isinstance(value, (list, tuple)):
            self._enter(depth, path, layer)
            for index, item in enumerate(value):
                self.visit(item, path + (index,), depth + 1, None, layer)
        elif isinstance(value, str):
            self._check_string(value, path, key, layer)
        elif value is None or isinstance(value, (bool, int, float)):
            return
        else:
            raise ModelConfigError(
                "Expected only JSON values in the config. Received a "
                f"{type(value).__name__} {_where(path, layer)}."
            )

    def _enter(self, depth: int, path: _Path, layer: _Layer) -> None:
        if depth > self.limits.max_depth:
            raise ModelConfigError(
                f"The config is nested deeper than {self.limits.max_depth} "
                f"levels {_where(path, layer)}; refusing it."
            )
        self.max_depth = max(self.max_depth, depth)

    def _visit_dict(
        self, value: Mapping[str, Any], path: _Path, depth: int,
        key: str | int | None, layer: _Layer,
    ) -> None:
        for name, item in value.items():
            if not isinstance(name, str):
                raise ModelConfigError(
                    f"Expected string keys. Received {name!r} "
                    f"{_where(path, layer)}."
                )
            if name.startswith("__") and not (
                name == "__passive_serialization__" and item is True
            ):
                raise UnsafeConfigError(
                    f"Key {name!r} looks like a Keras serialization marker "
                    f"and is refused {_where(path + (name,), layer)}."
                )
        if "class_name" in value:
            self._visit_object(value, path, depth, key, layer)
            return
        for name, item in value.items():
            self.visit(item, path + (name,), depth + 1, name, layer)

    def _visit_object(
        self, obj: Mapping[str, Any], path: _Path, depth: int,
        key: str | int | None, layer: _Layer,
    ) -> None:
        class_name = obj["class_name"]
        if not isinstance(class_name, str):
            raise ModelConfigError(
                "Expected class_name to be a string. Received "
                f"{class_name!r} {_where(path, layer)}."
            )
        own_name = _object_name(obj)
        if class_name in REFUSED_CLASSES:
            label = f"layer {own_name!r}" if own_name else "layer"
            raise UnsafeConfigError(
                f"{REFUSED_CLASSES[class_name]} and are refused "
                f"({label} at {_format_path(path)})."
            )
        if class_name == "function":
            self._check_function(obj, path, key, layer)
            return
        if class_name == "__keras_tensor__" and "inbound_nodes" in path:
            self._visit_children(obj, path, depth, layer)
            return
        if class_name == "__tuple__" and set(obj) <= {"class_name", "items"}:
            self._visit_children(obj, path, depth, layer)  # tf.keras 2, inert
            return
        if class_name.startswith("__") or class_name.startswith("builtins"):
            what = _SPECIAL_MARKERS.get(class_name, "a Keras serialization marker")
            raise UnsafeConfigError(
                f"Found {what} (class_name {class_name!r}), which Keras would "
                f"turn into code or data; refused {_where(path, layer)}."
            )

        # Entries in a layer position speak for themselves in messages.
        positioned = key is None or key in _WRAPPED_LAYER_KEYS
        subject = (own_name, class_name) if own_name and positioned else layer
        module = self._check_module(obj, class_name, path, subject)
        self._check_registered_name(obj, class_name, module, path, subject)

        if self._is_layer(class_name, module, key):
            layer = (own_name or "?", class_name)
            self._count_layer(obj, class_name, path, layer)
        compile_config = obj.get("compile_config")
        if compile_config:
            raise UnsafeConfigError(
                "compile_config (optimizer, losses, metrics) is not accepted: "
                "AutoInit never compiles, and Keras would deserialize it. "
                "Remove it (drop_compile_config does) or save the model "
                f"uncompiled {_where(path + ('compile_config',), layer)}."
            )
        self._visit_children(obj, path, depth, layer)

    def _visit_children(
        self, obj: Mapping[str, Any], path: _Path, depth: int, layer: _Layer
    ) -> None:
        for name, item in obj.items():
            if name in ("class_name", "module", "registered_name"):
                continue  # checked by _visit_object
            self.visit(item, path + (name,), depth + 1, name, layer)

    def _check_module(
        self, obj: Mapping[str, Any], class_name: str, path: _Path,
        layer: _Layer,
    ) -> str | None:
        where = _where(path, layer)
        if "module" not in obj:
            if class_name not in LEGACY_CLASSES:
                raise UnsafeConfigError(
                    f"Class {class_name!r} is not on the allow-list of Keras "
                    f"classes AutoInit accepts{_why_refused(class_name)} {where}."
                )
            return None
        module = obj["module"]
        if module is None:
            raise UnsafeConfigError(
                f"Class {class_name!r} has module null: it is a custom class "
                f"defined in a script, and custom code is refused {where}."
            )
        if not isinstance(module, str):
            raise ModelConfigError(
                f"Expected module to be a string. Received {module!r} {where}."
            )
        allowed = self.allowed.get(module)
        if allowed is None:
            keras_owned = module == "keras" or module.startswith("keras.")
            detail = (
                "is not one of the Keras modules AutoInit accepts"
                if keras_owned
                else "is not part of Keras; only Keras' own classes (and "
                "AutoInit's registered ones) are accepted"
            )
            raise UnsafeConfigError(
                f"Module {module!r} (class {class_name!r}) {detail} {where}."
            )
        if class_name not in allowed:
            raise UnsafeConfigError(
                f"Class {class_name!r} from module {module!r} is not on the "
                f"allow-list of classes AutoInit accepts{_why_refused(class_name)} "
                f"{where}."
            )
        return module

    def _check_registered_name(
        self, obj: Mapping[str, Any], class_name: str, module: str | None,
        path: _Path, layer: _Layer,
    ) -> None:
        registered = obj.get("registered_name")
        if registered is None or registered == class_name:
            return
        if module is not None and class_name in self.extra.get(module, ()):
            if registered == f"{module.split('.')[0]}>{class_name}":
                return
        raise UnsafeConfigError(
            f"registered_name {registered!r} differs from class_name "
            f"{class_name!r}: Keras would look it up among registered custom "
            f"objects instead of its built-ins; refused {_where(path, layer)}."
        )

    def _is_layer(
        self, class_name: str, module: str | None, key: str | int | None
    ) -> bool:
        if module is None:  # tf.keras 2 entry: judge by name and position
            if class_name in MODEL_CLASSES:
                return True
            return class_name in LAYER_CLASSES and (
                key is None or key in _WRAPPED_LAYER_KEYS
            )
        if class_name in MODEL_CLASSES:
            return True
        return module == "keras.layers" or keras_facts.is_op_node(module, class_name)

    def _count_layer(
        self, obj: Mapping[str, Any], class_name: str, path: _Path,
        layer: _Layer,
    ) -> None:
        self.num_layers += 1
        self.class_counts[class_name] += 1
        if self.num_layers > self.limits.max_layers:
            raise ModelConfigError(
                f"The config has more than {self.limits.max_layers} layers "
                f"(counting nested ones); refusing it {_where(path, layer)}."
            )
        self.estimated_params += _estimate_params(class_name, obj)
        if self.estimated_params > self.limits.max_params:
            raise ModelConfigError(
                "The config asks for more than about "
                f"{self.limits.max_params:,} parameters (estimate "
                f"{self.estimated_params:,} so far); refusing it "
                f"{_where(path, layer)}."
            )

    def _check_activation(self, value: Any, path: _Path, layer: _Layer) -> None:
        if value is None:
            return
        if isinstance(value, str):
            if value not in KERAS_ACTIVATIONS:
                raise UnsafeConfigError(
                    f"Activation {value!r} is not a Keras activation name "
                    f"(expected one of keras.activations, e.g. 'relu') "
                    f"{_where(path, layer)}."
                )
            return
        if isinstance(value, Mapping) and value.get("class_name") == "function":
            return  # checked by _check_function when the walk reaches it
        raise UnsafeConfigError(
            "Expected an activation name such as 'relu'. Received "
            f"{_short(value)} {_where(path, layer)}."
        )

    def _check_function(
        self, obj: Mapping[str, Any], path: _Path, key: str | int | None,
        layer: _Layer,
    ) -> None:
        module, name = obj.get("module"), obj.get("config")
        where = _where(path, layer)
        if not _is_activation_key(key):
            raise UnsafeConfigError(
                f"Found a serialized function (module {module!r}, name "
                f"{name!r}); functions are accepted only as Keras activations "
                f"{where}."
            )
        if module not in ACTIVATION_FUNCTION_MODULES or (
            name not in KERAS_ACTIVATIONS
        ):
            raise UnsafeConfigError(
                f"Activation given as a function object from module "
                f"{module!r} named {name!r}; only keras.activations functions "
                f"are accepted, best given by name such as 'relu' {where}."
            )
        if obj.get("registered_name") not in (None, name):
            raise UnsafeConfigError(
                f"registered_name {obj.get('registered_name')!r} differs from "
                f"the activation name {name!r}; refused {where}."
            )

    def _check_string(
        self, value: str, path: _Path, key: str | int | None, layer: _Layer
    ) -> None:
        if value.startswith("__"):
            raise UnsafeConfigError(
                f"String {_short(value)} looks like a Keras serialization "
                f"marker and is refused {_where(path, layer)}."
            )
        if _is_keras_object_key(key) and not _IDENTIFIER.fullmatch(value):
            # Keras looks such strings up among registered custom objects
            # ("package>Name"); built-ins are plain names like "he_normal".
            raise UnsafeConfigError(
                f"Expected a Keras name such as 'glorot_uniform' for {key!r}. "
                f"Received {_short(value)} {_where(path, layer)}."
            )
        if _is_path_key(key):
            raise UnsafeConfigError(
                f"Argument {key!r} names a file ({_short(value)}); AutoInit "
                f"does not let uploads read files from the server "
                f"{_where(path, layer)}."
            )


def _why_refused(class_name: str) -> str:
    reason = keras_facts.CONVERTER_ONLY_LAYERS.get(class_name)
    return f" ({reason})" if reason else ""


def _object_name(obj: Mapping[str, Any]) -> str | None:
    inner = obj.get("config")
    name = inner.get("name") if isinstance(inner, Mapping) else None
    if name is None:
        name = obj.get("name")
    return name if isinstance(name, str) else None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- The rough parameter estimate ---------------------------------------------


def _count(value: Any) -> int:
    """A non-negative integer from a config number; huge for inf, 0 if absent."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float):
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return 10**18
    return abs(int(value))


def _product(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return math.prod(max(_count(v), 1) for v in value)
    return max(_count(value), 1)


def _input_width(obj: Mapping[str, Any]) -> int:
    """Last dimension of the first input shape in build_config, else 1."""
    build = obj.get("build_config")
    shape = build.get("input_shape") if isinstance(build, Mapping) else None
    if isinstance(shape, Mapping):
        shape = next(iter(shape.values()), None)
    if isinstance(shape, (list, tuple)) and shape and isinstance(
        shape[0], (list, tuple)
    ):
        shape = shape[0]
    if isinstance(shape, (list, tuple)) and shape:
        return max(_count(shape[-1]), 1)
    return 1


_RNN_GATES = {"SimpleRNN": 1, "SimpleRNNCell": 1, "GRU": 3, "GRUCell": 3,
              "LSTM": 4, "LSTMCell": 4}


def _estimate_params(class_name: str, obj: Mapping[str, Any]) -> int:
    cfg = obj.get("config")
    if not isinstance(cfg, Mapping):
        return 0
    width = _input_width(obj)
    if class_name == "Dense":
        return (width + 1) * _count(cfg.get("units"))
    if class_name == "EinsumDense":
        return width * _product(cfg.get("output_shape"))
    if class_name == "Embedding":
        return _count(cfg.get("input_dim")) * _count(cfg.get("output_dim"))
    if class_name.startswith(("DepthwiseConv", "SeparableConv")):
        depthwise = _product(cfg.get("kernel_size")) * width * max(
            _count(cfg.get("depth_multiplier")), 1
        )
        pointwise = width * _count(cfg.get("filters"))
        return depthwise + pointwise
    if class_name.startswith("Conv"):
        groups = max(_count(cfg.get("groups")), 1)
        filters = _count(cfg.get("filters"))
        return _product(cfg.get("kernel_size")) * width * filters // groups
    if class_name in _RNN_GATES:
        units = _count(cfg.get("units"))
        return _RNN_GATES[class_name] * units * (width + units + 1)
    if class_name == "MultiHeadAttention":
        heads, key_dim = _count(cfg.get("num_heads")), _count(cfg.get("key_dim"))
        value_dim = _count(cfg.get("value_dim")) or key_dim
        return heads * (2 * key_dim + 2 * value_dim) * width
    return 0


# --- Reading uploads ----------------------------------------------------------

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ASK_FOR = (
    "Upload the model's JSON config (json of model.to_json()) or a .keras "
    "archive (model.save('model.keras'))."
)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
               struct.error, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError)


def _is_hdf5(data: bytes) -> bool:
    """HDF5's signature sits at offset 0, 512, 1024, 2048, ... (user block)."""
    offset = 0
    while offset + len(_HDF5_MAGIC) <= len(data):
        if data[offset: offset + len(_HDF5_MAGIC)] == _HDF5_MAGIC:
            return True
        offset = 512 if offset == 0 else offset * 2
    return False


def _check_size(data: bytes, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise UploadTooLargeError(
            f"The upload is {len(data):,} bytes; the limit is "
            f"{limits.max_bytes:,} bytes."
        )


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ModelConfigError(
                f"The JSON has the key {key!r} twice in one object; refusing "
                "ambiguous JSON."
            )
        out[key] = value
    return out


def _parse_json_object(data: bytes, source: str) -> dict[str, Any]:
    """UTF-8 JSON bytes -> dict, with errors that give line and column."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ModelConfigError(
            f"{source} is not UTF-8 text: byte {error.start} "
            f"(0x{data[error.start]:02x}) cannot be decoded. {_ASK_FOR}"
        ) from None
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ModelConfigError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}. {_ASK_FOR}"
        ) from None
    except RecursionError:
        raise ModelConfigError(f"{source} is JSON nested too deeply.") from None
    except ModelConfigError:
        raise
    except ValueError as error:  # e.g. an integer with too many digits
        raise ModelConfigError(f"{source} cannot be parsed: {error}.") from None
    if not isinstance(parsed, dict):
        raise ModelConfigError(
            f"Expected {source[:1].lower() + source[1:]} to hold a JSON object (a model config). "
            f"Received a JSON {type(parsed).__name__}."
        )
    return parsed


def _check_member_name(name: str) -> None:
    parts = re.split(r"[/\\]", name)
    if (
        name.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", name)
        or ".." in parts
        or "\x00" in name
    ):
        raise UnsafeConfigError(
            f"The archive holds a file named {name!r}, which points outside "
            "the archive; refusing it."
        )


def read_keras_archive_config(
    data: bytes, limits: UploadLimits = UploadLimits()
) -> dict[str, Any]:
    """Read ``config.json`` out of a ``.keras`` archive, and nothing else.

    A ``.keras`` file is a zip holding ``config.json``, ``metadata.json`` and
    ``model.weights.h5``. The member names are checked, ``config.json``'s
    declared size and compression ratio are bounded, and at most
    ``max_archive_member_bytes + 1`` bytes are decompressed. Nothing is
    extracted and the weights file is never opened.

    Raises:
        UploadTooLargeError: the archive or its ``config.json`` is too large.
        UnsafeConfigError: a member name escapes the archive, or
            ``config.json`` is a likely zip bomb.
        ModelConfigError: not a readable zip, no ``config.json``, not JSON.
    """
    _check_size(data, limits)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as error:
        raise ModelConfigError(
            f"The upload is not a readable zip archive ({error}); it may be "
            f"truncated. {_ASK_FOR}"
        ) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_members:
            raise ModelConfigError(
                f"The archive holds {len(infos)} files; a .keras archive holds "
                f"a few (at most {limits.max_archive_members} accepted)."
            )
        for info in infos:
            _check_member_name(info.filename)
        names = [info.filename for info in infos]
        if any(n.rsplit("/", 1)[-1].startswith("saved_model.pb") for n in names):
            raise ModelConfigError(
                f"The archive holds a TensorFlow SavedModel, which is not "
                f"accepted. {_ASK_FOR}"
            )
        configs = [info for info in infos if info.filename == "config.json"]
        if len(configs) != 1:
            found = "no" if not configs else f"{len(configs)}"
            raise ModelConfigError(
                f"Expected one config.json in the .keras archive; found "
                f"{found}. Files present: {_short(names[:10], 200)}. "
                f"{_ASK_FOR}"
            )
        return _read_config_member(archive, configs[0], limits)


def _read_config_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits
) -> dict[str, Any]:
    limit = limits.max_archive_member_bytes
    if info.flag_bits & 0x1:
        raise ModelConfigError("config.json in the archive is encrypted.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelConfigError(
            "config.json in the archive uses compression method "
            f"{info.compress_type}; expected stored (0) or deflated (8)."
        )
    if info.file_size > limit:
        raise UploadTooLargeError(
            f"config.json in the archive is {info.file_size:,} bytes "
            f"uncompressed; the limit is {limit:,} bytes."
        )
    ratio = info.file_size / info.compress_size if info.compress_size else (
        math.inf if info.file_size else 1.0
    )
    if ratio > limits.max_compression_ratio:
        raise UnsafeConfigError(
            f"config.json in the archive expands {ratio:,.0f} times when "
            f"decompressed (limit {limits.max_compression_ratio:g}); refusing "
            "a likely zip bomb."
        )
    try:
        with archive.open(info) as member:
            raw = member.read(limit + 1)
    except _ZIP_ERRORS as error:
        raise ModelConfigError(
            f"config.json in the archive cannot be read ({error}); the "
            "archive is damaged or truncated."
        ) from None
    if len(raw) > limit:
        raise UploadTooLargeError(
            f"config.json in the archive is larger than {limit:,} bytes."
        )
    return _parse_json_object(raw, "config.json in the archive")


def drop_compile_config(config: dict[str, Any]) -> dict[str, Any]:
    """Remove ``compile_config`` from every serialized object, in place.

    AutoInit never compiles a model, and Keras would deserialize the
    optimizer, losses and metrics it names. Objects deeper than 256 levels
    are left alone (`validate_model_config` refuses such configs anyway).
    Returns ``config`` for chaining.
    """
    stack: list[tuple[Any, int]] = [(config, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > 256:
            continue
        if isinstance(value, dict):
            if "class_name" in value:
                value.pop("compile_config", None)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return config


def parse_upload(
    data: bytes, filename: str | None, limits: UploadLimits = UploadLimits()
) -> dict[str, Any]:
    """Turn an uploaded file into a config dict, without trusting it.

    Accepted: a JSON model config (``model.to_json()``, Keras 3 or tf.keras 2)
    and a ``.keras`` archive. Refused with a message that says what to upload
    instead: HDF5 (``.h5``) files and TensorFlow SavedModels. The content
    decides the format; ``filename`` only sharpens the messages.

    The returned dict has had its ``compile_config`` entries removed (see
    `drop_compile_config`) and is NOT yet validated: convert tf.keras 2
    configs, then call `validate_model_config`.

    Raises:
        UploadTooLargeError: more than ``limits.max_bytes``.
        ModelConfigError: unsupported format, broken archive, invalid UTF-8
            or JSON (with line and column).
    """
    data = bytes(data)
    _check_size(data, limits)
    name = (filename or "").lower()
    if not data:
        raise ModelConfigError(f"The upload is empty. {_ASK_FOR}")
    if _is_hdf5(data) or name.endswith((".h5", ".hdf5")):
        raise ModelConfigError(
            "HDF5 model files (.h5) are not accepted: reading them runs Keras' "
            f"legacy loader on untrusted bytes. {_ASK_FOR}"
        )
    if name.endswith((".pb", ".pbtxt")):
        raise ModelConfigError(
            f"TensorFlow SavedModels (saved_model.pb) are not accepted. {_ASK_FOR}"
        )
    if data.startswith(_ZIP_MAGICS):
        config = read_keras_archive_config(data, limits)
    elif name.endswith(".keras"):
        raise ModelConfigError(
            f"{filename!r} is named like a .keras archive but is not a zip "
            f"file. {_ASK_FOR}"
        )
    elif data.startswith(b"\x1f\x8b"):
        raise ModelConfigError(
            f"Gzip/tar archives are not accepted. {_ASK_FOR}"
        )
    else:
        config = _parse_json_object(data, "The upload")
    return drop_compile_config(config)
