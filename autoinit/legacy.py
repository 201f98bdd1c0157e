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

Argument changes (Keras 2 -> Keras 3.15), all listed in `_ARGUMENT_RULES`:
dropped always: Embedding `input_length`; MultiHeadAttention `query_shape`,
`key_shape`, `value_shape`, `softmax_robust_masking`; SimpleRNN/GRU/LSTM
`implementation`; BatchNormalization `fused`, `virtual_batch_size`,
`adjustment`; SpatialDropout `noise_shape` and `trainable` (Keras 3 rejects
both); SeparableConv `kernel_initializer/regularizer/constraint` (unused in
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
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

from autoinit import keras_facts
from autoinit.errors import ModelConfigError, UnsafeConfigError

__all__ = [
    "LegacyConfigError",
    "is_legacy_config",
    "convert_legacy_config",
    "to_legacy_config",
]


class LegacyConfigError(ModelConfigError):
    """A tf.keras 2 config cannot be expressed as a Keras 3 config."""


# --- What Keras 3 knows -----------------------------------------------------

_KERAS_LAYERS = keras_facts.CONVERTER_KNOWN_LAYERS
_KERAS_OBJECTS = {
    "initializers": keras_facts.INITIALIZER_CLASSES,
    "regularizers": keras_facts.REGULARIZER_CLASSES,
    "constraints": keras_facts.CONSTRAINT_CLASSES,
}
_KERAS_ACTIVATIONS = keras_facts.ACTIVATIONS
_MODEL_CLASSES = keras_facts.MODEL_CLASSES
_KERAS_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow.python.keras", "tensorflow.keras")
_WRAPPED_LAYER_KEYS = ("layer", "backward_layer", "cell")
_TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})

# --- Argument rules (see the module docstring for the list in words) --------

_DROP = "drop"
_RENAME = "rename"
_DEFAULT_ONLY = "default-only"
_SINGLE_ITEM = "single-item"  # Keras 2 list of one -> Keras 3 scalar

_ANY_LAYER_RULES = {
    "batch_input_shape": (_DROP,),
    "batch_size": (_DROP,),
    "input_dtype": (_DROP,),
    "dynamic": (_DROP,),
}
_RNN_RULES = {"time_major": (_DEFAULT_ONLY, False), "implementation": (_DROP,)}
_GROUPS_ONE = {"groups": (_DEFAULT_ONLY, 1)}
_SEPARABLE_RULES = {
    **_GROUPS_ONE,
    "kernel_initializer": (_DROP,),
    "kernel_regularizer": (_DROP,),
    "kernel_constraint": (_DROP,),
}
_CONV_LSTM_RULES = {"time_major": (_DEFAULT_ONLY, False), "unroll": (_DEFAULT_ONLY, False)}
_ARGUMENT_RULES: dict[str, dict[str, tuple]] = {
    "InputLayer": {"batch_input_shape": (_RENAME, "batch_shape"), "input_dtype": (_DROP,)},
    "Embedding": {"input_length": (_DROP,)},
    "MultiHeadAttention": {
        "query_shape": (_DROP,),
        "key_shape": (_DROP,),
        "value_shape": (_DROP,),
        "softmax_robust_masking": (_DROP,),
    },
    "SimpleRNN": _RNN_RULES,
    "GRU": _RNN_RULES,
    "LSTM": _RNN_RULES,
    "ConvLSTM1D": _CONV_LSTM_RULES,
    "ConvLSTM2D": _CONV_LSTM_RULES,
    "ConvLSTM3D": _CONV_LSTM_RULES,
    "BatchNormalization": {
        "axis": (_SINGLE_ITEM,),
        "fused": (_DROP,),
        "virtual_batch_size": (_DROP,),
        "adjustment": (_DROP,),
    },
    "DepthwiseConv1D": _GROUPS_ONE,
    "DepthwiseConv2D": _GROUPS_ONE,
    "Conv1DTranspose": _GROUPS_ONE,
    "Conv2DTranspose": _GROUPS_ONE,
    "Conv3DTranspose": _GROUPS_ONE,
    "SeparableConv1D": _SEPARABLE_RULES,
    "SeparableConv2D": _SEPARABLE_RULES,
    "SpatialDropout1D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "SpatialDropout2D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "SpatialDropout3D": {"noise_shape": (_DROP,), "trainable": (_DROP,)},
    "LeakyReLU": {"alpha": (_RENAME, "negative_slope")},
    "Bidirectional": {"num_constants": (_DEFAULT_ONLY, 0)},
}

# Keras 2 initializer arguments, for writing Keras 3 initializers back.
_LEGACY_INITIALIZER_ARGS = {
    "VarianceScaling": ("scale", "mode", "distribution", "seed"),
    "GlorotUniform": ("seed",),
    "GlorotNormal": ("seed",),
    "HeUniform": ("seed",),
    "HeNormal": ("seed",),
    "LecunUniform": ("seed",),
    "LecunNormal": ("seed",),
    "RandomNormal": ("mean", "stddev", "seed"),
    "TruncatedNormal": ("mean", "stddev", "seed"),
    "RandomUniform": ("minval", "maxval", "seed"),
    "Orthogonal": ("gain", "seed"),
    "Identity": ("gain",),
    "Constant": ("value",),
    "Zeros": (),
    "Ones": (),
}
_KERAS3_INITIALIZER_ALIASES = {
    "OrthogonalInitializer": "Orthogonal",
    "IdentityInitializer": "Identity",
}
INITIALIZER_ATTRIBUTES = (
    "kernel_initializer",
    "bias_initializer",
    "embeddings_initializer",
    "depthwise_initializer",
    "pointwise_initializer",
    "recurrent_initializer",
)


# --- Detection --------------------------------------------------------------


def is_legacy_config(config: dict) -> bool:
    """Whether `config` (a parsed `model.to_json()`) was written by tf.keras 2.

    True when the top level says ``keras_version`` 2.x, when a layer lacks
    the ``module`` key, when an inbound node is a Keras 2 list, or when a
    model class comes from `tf_keras`/`keras.engine`.
    """
    if not isinstance(config, dict):
        return False
    if str(config.get("keras_version", "")).startswith("2."):
        return True
    return any(_looks_legacy(layer) for layer in _walk_layers(config))


def _looks_legacy(layer: dict) -> bool:
    if "module" not in layer or layer.get("class_name") == "Model":
        return True
    module = layer.get("module") or ""
    if layer.get("class_name") in _MODEL_CLASSES and (
        module.startswith("tf_keras") or ".engine" in module
    ):
        return True
    return any(isinstance(node, list) for node in layer.get("inbound_nodes", ()))


def _walk_layers(obj: dict) -> Iterator[dict]:
    """Yield `obj` and every layer config nested in it, depth first."""
    yield obj
    inner = obj.get("config")
    if not isinstance(inner, dict):
        return
    for layer in inner.get("layers", ()) or ():
        if isinstance(layer, dict):
            yield from _walk_layers(layer)
    for key in _WRAPPED_LAYER_KEYS:
        if isinstance(inner.get(key), dict):
            yield from _walk_layers(inner[key])


# --- Conversion -------------------------------------------------------------


def convert_legacy_config(
    config: dict, custom_objects: Mapping[str, Any] | None = None
) -> dict:
    """Rewrite a tf.keras 2 model config as a Keras 3 one.

    Args:
        config: a parsed `model.to_json()` of a tf.keras 2 Functional or
            Sequential model (``{"class_name": ..., "config": ...}``).
        custom_objects: names of user classes or functions allowed in the
            config; any class outside Keras is refused unless named here.
            Pass the same mapping to Keras when deserializing.

    Returns:
        A new dict loadable by `keras.models.model_from_json(json.dumps(...))`.

    Raises:
        UnsafeConfigError: a Lambda layer, or a class outside Keras that
            `custom_objects` does not name.
        LegacyConfigError: anything else Keras 3 cannot express.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise LegacyConfigError(
            "Expected a model config dict with 'class_name' and 'config' keys "
            f"(a parsed model.to_json()). Received: {type(config).__name__} "
            f"with keys {sorted(config) if isinstance(config, dict) else None}."
        )
    if config.get("class_name") not in _MODEL_CLASSES:
        raise LegacyConfigError(
            "Expected a Functional or Sequential model config. "
            f"Received: class_name={config.get('class_name')!r}."
        )
    converter = _Converter(dict(custom_objects or {}))
    return converter.layer(copy.deepcopy(config))


class _Converter:
    """Holds `custom_objects` while walking one config."""

    def __init__(self, custom_objects: dict[str, Any]):
        self.custom_objects = custom_objects

    # Layers ------------------------------------------------------------------

    def layer(self, layer: dict) -> dict:
        """Convert one layer or model config (without its inbound nodes)."""
        class_name = layer.get("class_name")
        name = layer.get("name") or (layer.get("config") or {}).get("name")
        if class_name == "Lambda":
            raise UnsafeConfigError(
                f"Lambda layers carry Python code and are refused (layer {name!r})."
            )
        if class_name in _TF_OP_LAYERS:
            function = (layer.get("config") or {}).get("function")
            raise LegacyConfigError(
                f"Layer {name!r} ({class_name}) wraps the TensorFlow op "
                f"{function!r}, which Keras 3 cannot load; expected Keras layers "
                "only. Rewrite the op as a Keras layer before converting."
            )
        if class_name in ("Functional", "Model"):
            return self.functional(layer)
        if class_name == "Sequential":
            return self.sequential(layer)
        custom_key = self._custom_key(class_name, layer.get("registered_name"))
        if custom_key is not None:
            return {**layer, "registered_name": custom_key}
        if class_name not in _KERAS_LAYERS and class_name != "ThresholdedReLU":
            raise UnsafeConfigError(self._not_keras("Layer", name, class_name, layer.get("module")))
        if not _is_keras_module(layer.get("module")):
            raise UnsafeConfigError(self._not_keras("Layer", name, class_name, layer.get("module")))
        config = self.arguments(class_name, name, dict(layer.get("config") or {}))
        if class_name == "ThresholdedReLU":
            class_name = "ReLU"
            theta = config.pop("theta", 1.0)
            config.update(threshold=theta, negative_slope=0.0, max_value=None)
        return {
            "module": "keras.layers",
            "class_name": class_name,
            "config": config,
            "registered_name": None,
        }

    def arguments(self, class_name: str, name: str, config: dict) -> dict:
        """Apply the argument rules and convert nested Keras objects."""
        rules = dict(_ANY_LAYER_RULES) if class_name != "InputLayer" else {}
        rules.update(_ARGUMENT_RULES.get(class_name, {}))
        for argument, rule in rules.items():
            if argument not in config:
                continue
            value = config.pop(argument)
            if rule[0] == _RENAME:
                config[rule[1]] = value
            elif rule[0] == _SINGLE_ITEM:
                if isinstance(value, list) and len(value) != 1:
                    raise LegacyConfigError(
                        f"Layer {name!r} ({class_name}) has {argument}={value!r}; "
                        f"Keras 3 expects a single {argument}."
                    )
                config[argument] = value[0] if isinstance(value, list) else value
            elif rule[0] == _DEFAULT_ONLY and value != rule[1]:
                raise LegacyConfigError(
                    f"Layer {name!r} ({class_name}) has {argument}={value!r}; "
                    f"Keras 3 has no such argument, so only {argument}="
                    f"{rule[1]!r} can be converted."
                )
        for key, value in list(config.items()):
            if key == "dtype" and class_name != "InputLayer":
                config[key] = _dtype_policy(value)
            elif key.endswith("_initializer"):
                config[key] = self.keras_object(value, "initializers", name, key)
            elif key.endswith("_regularizer"):
                config[key] = self.keras_object(value, "regularizers", name, key)
            elif key.endswith("_constraint"):
                config[key] = self.keras_object(value, "constraints", name, key)
            elif key in ("activation", "recurrent_activation"):
                config[key] = self.activation(value, name, key)
            elif key in _WRAPPED_LAYER_KEYS and isinstance(value, dict):
                config[key] = self.layer(value)
            elif key == "cells" and isinstance(value, list):
                config[key] = [self.layer(cell) for cell in value]
        return config

    def keras_object(self, value: Any, kind: str, layer_name: str, key: str) -> Any:
        """Convert an initializer/regularizer/constraint config."""
        if value is None or isinstance(value, (str, int, float)):
            return value
        if not isinstance(value, dict) or "class_name" not in value:
            raise LegacyConfigError(
                f"Layer {layer_name!r}: expected {key} to be a config dict with "
                f"'class_name'. Received: {value!r}."
            )
        class_name = value["class_name"]
        custom_key = self._custom_key(class_name, value.get("registered_name"))
        if custom_key is not None:
            return {**value, "registered_name": custom_key}
        if class_name not in _KERAS_OBJECTS[kind] or not _is_keras_module(value.get("module")):
            raise UnsafeConfigError(
                f"Layer {layer_name!r}: {key} is {class_name!r} from module "
                f"{value.get('module')!r}, not one of Keras' {kind} "
                f"{sorted(_KERAS_OBJECTS[kind])}; pass it in custom_objects to allow it."
            )
        config = {k: v for k, v in (value.get("config") or {}).items() if k != "dtype"}
        if class_name == "VarianceScaling" and config.get("distribution") == "normal":
            config["distribution"] = "truncated_normal"
        return {
            "module": f"keras.{kind}",
            "class_name": class_name,
            "config": config,
            "registered_name": None,
        }

    def activation(self, value: Any, layer_name: str, key: str) -> Any:
        """Keep Keras activations; refuse unknown functions."""
        if value is None:
            return "linear"
        if isinstance(value, dict):
            return self.layer(value)
        if value in _KERAS_ACTIVATIONS or value in self.custom_objects:
            return value
        raise UnsafeConfigError(
            f"Layer {layer_name!r}: {key}={value!r} is not a Keras activation "
            "(expected one of keras.activations); pass it in custom_objects to allow it."
        )

    # Models ------------------------------------------------------------------

    def functional(self, layer: dict) -> dict:
        """Convert a Functional model config, its graph included."""
        config = layer["config"]
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise LegacyConfigError(
                f"Model {config.get('name')!r} (Functional): expected 'layers' "
                f"to be a list. Received: {type(layers).__name__}."
            )
        graph = _Graph(layers)
        converted_layers = []
        for entry in layers:
            converted = self.layer(entry)
            converted["name"] = entry["name"]
            converted["inbound_nodes"] = [
                graph.node(entry, node) for node in entry.get("inbound_nodes", ())
            ]
            converted_layers.append(converted)
        return {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {
                "name": config.get("name"),
                "trainable": config.get("trainable", True),
                "layers": converted_layers,
                "input_layers": graph.endpoints(config.get("input_layers", [])),
                "output_layers": graph.endpoints(config.get("output_layers", [])),
            },
            "registered_name": "Functional",
        }

    def sequential(self, layer: dict) -> dict:
        """Convert a Sequential model config; `batch_input_shape` on its first
        layer becomes an explicit InputLayer, as Keras 3 expects."""
        config = layer["config"]
        entries = list(config.get("layers", ()))
        converted = []
        if entries and entries[0].get("class_name") != "InputLayer":
            first = entries[0].get("config") or {}
            if first.get("batch_input_shape") is not None:
                converted.append(_input_layer(
                    f"{first.get('name', 'sequential')}_input",
                    first["batch_input_shape"],
                    first.get("dtype") if isinstance(first.get("dtype"), str) else "float32",
                ))
        converted.extend(self.layer(entry) for entry in entries)
        new_config = {
            "name": config.get("name"),
            "trainable": config.get("trainable", True),
            "layers": converted,
        }
        if config.get("build_input_shape") is not None:
            new_config["build_input_shape"] = config["build_input_shape"]
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": new_config,
            "registered_name": None,
        }

    # Helpers -------------------------------------------------------------------

    def _custom_key(self, class_name: str, registered_name: str | None) -> str | None:
        for key in (registered_name, class_name):
            if key is not None and key in self.custom_objects:
                return key
        return None

    @staticmethod
    def _not_keras(what: str, name: str, class_name: str, module: str | None) -> str:
        return (
            f"{what} {name!r} has class {class_name!r} from module {module!r}, "
            "which is not a Keras class this converter knows; pass it in "
            "custom_objects to allow it."
        )


def _is_keras_module(module: str | None) -> bool:
    """Old configs carry no module; new ones name a Keras package."""
    return module is None or any(
        module == prefix or module.startswith(prefix + ".") for prefix in _KERAS_MODULE_PREFIXES
    )


def _dtype_policy(value: Any) -> Any:
    """Keras 2 `"float32"` or `{"class_name": "Policy", ...}` -> DTypePolicy dict."""
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict) and value.get("class_name") in ("Policy", "DTypePolicy"):
        name = (value.get("config") or {}).get("name", "float32")
    else:
        return value
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": name},
        "registered_name": None,
    }


def _input_layer(name: str, batch_shape: list, dtype: str) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": batch_shape,
            "dtype": dtype,
            "sparse": False,
            "ragged": False,
            "name": name,
        },
        "registered_name": None,
    }


def _is_node_leaf(value: Any) -> bool:
    """A Keras 2 tensor reference: [layer, node, tensor] or with kwargs."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
        and (len(value) == 3 or isinstance(value[3], dict))
    )


class _Graph:
    """Node-index bookkeeping for one Functional model's layers.

    Keras 2 counts a nested model's own construction node, so its calls are
    nodes 1, 2, ... in the config. Keras 3 does not: a nested model's calls
    are nodes 0, 1, ... in `keras_history`, while `output_layers` of a
    Functional keep the Keras 2 numbering (Keras 3 subtracts one itself,
    for Functional models only).
    """

    def __init__(self, layers: list[dict]):
        self.by_name = {entry["name"]: entry for entry in layers}
        self.shapes: dict[tuple, Any] = {}
        for entry in layers:
            self._collect_shapes(entry)

    def first_node_offset(self, name: str) -> int:
        entry = self.by_name.get(name)
        if entry is None:
            return 0
        class_name = entry.get("class_name")
        if class_name in ("Functional", "Model"):
            return 1
        if class_name == "Sequential":
            inner = (entry.get("config") or {}).get("layers") or [{}]
            first = inner[0]
            has_input = first.get("class_name") == "InputLayer" or (
                (first.get("config") or {}).get("batch_input_shape") is not None
            )
            return 1 if has_input else 0
        return 0

    def node(self, layer: dict, node: Any) -> Any:
        """One Keras 2 inbound node as Keras 3 ``{"args": ..., "kwargs": ...}``."""
        if isinstance(node, dict):
            return node  # already Keras 3
        if not isinstance(node, list) or not node:
            raise LegacyConfigError(
                f"Layer {layer.get('name')!r} ({layer.get('class_name')}): expected "
                "each inbound node to be a non-empty list of [layer, node, tensor, "
                f"kwargs] entries. Received: {node!r}."
            )
        kwargs: dict = {}
        leaves: list = []

        def first_arg(value: Any) -> Any:
            if isinstance(value, list) and len(value) >= 3 and value[0] == "_CONSTANT_VALUE":
                if len(value) > 3 and isinstance(value[3], dict):
                    leaves.append(value)
                return value[2]
            if _is_node_leaf(value):
                leaves.append(value)
                return self.tensor(value[:3], layer)
            if isinstance(value, list):
                return [first_arg(item) for item in value]
            if isinstance(value, dict):
                return {key: first_arg(item) for key, item in value.items()}
            return value

        args = first_arg(node)
        for leaf in leaves:
            if len(leaf) == 4 and leaf[3]:
                kwargs = leaf[3]
                break
        if isinstance(args, list) and len(args) == 1:
            args = args[0]
        converted = {"args": [args], "kwargs": self._kwargs(kwargs, layer)}
        _fill_unknown_shapes(converted)
        return converted

    def _kwargs(self, value: Any, layer: dict) -> Any:
        if (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and value[0] in self.by_name
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:])
        ):
            return self.tensor(value, layer)
        if isinstance(value, list):
            return [self._kwargs(item, layer) for item in value]
        if isinstance(value, dict):
            return {key: self._kwargs(item, layer) for key, item in value.items()}
        return value

    def tensor(self, ref: list, consumer: dict) -> dict:
        name, node_index, tensor_index = ref
        if name not in self.by_name:
            raise LegacyConfigError(
                f"Layer {consumer.get('name')!r} ({consumer.get('class_name')}) reads "
                f"from layer {name!r}, which is not in the model. Expected one of "
                f"{sorted(self.by_name)}."
            )
        return {
            "class_name": "__keras_tensor__",
            "config": {
                # Keras 3 swaps this placeholder for the real tensor while
                # rebuilding; shape and dtype are informative only.
                "shape": self.shapes.get((name, node_index, tensor_index)),
                "dtype": self._dtype(name),
                "keras_history": [name, node_index - self.first_node_offset(name), tensor_index],
            },
        }

    def endpoints(self, refs: Any) -> Any:
        """`input_layers`/`output_layers` in Keras 3 numbering."""
        if _is_node_leaf(refs):
            name, node_index, tensor_index = refs[:3]
            entry = self.by_name.get(name, {})
            if entry.get("class_name") == "Sequential":
                node_index -= self.first_node_offset(name)
            return [name, node_index, tensor_index]
        if isinstance(refs, dict):
            return {key: self.endpoints(value) for key, value in refs.items()}
        converted = [self.endpoints(value) for value in refs]
        return converted[0] if len(converted) == 1 else converted

    def _dtype(self, name: str) -> str:
        config = self.by_name[name].get("config") or {}
        dtype = config.get("dtype", "float32")
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name", "float32")
        if isinstance(dtype, str) and dtype.startswith("mixed_"):
            dtype = dtype.split("_", 1)[1]
        return dtype if isinstance(dtype, str) else "float32"

    def _collect_shapes(self, entry: dict) -> None:
        """Learn tensor shapes from InputLayers and consumers' build_config."""
        config = entry.get("config") or {}
        if entry.get("class_name") == "InputLayer":
            shape = config.get("batch_input_shape") or config.get("batch_shape")
            if shape is not None:
                self.shapes[(entry["name"], 0, 0)] = list(shape)
            return
        nodes = entry.get("inbound_nodes") or []
        input_shape = (entry.get("build_config") or {}).get("input_shape")
        if not nodes or input_shape is None or not isinstance(nodes[0], list):
            return
        refs = [leaf for leaf in nodes[0] if _is_node_leaf(leaf)]
        if len(refs) == 1 and len(nodes[0]) == 1:
            shapes = [input_shape]
        elif len(refs) == len(nodes[0]) and _is_shape_list(input_shape, len(refs)):
            shapes = input_shape
        else:
            return
        for ref, shape in zip(refs, shapes):
            self.shapes.setdefault(tuple(ref[:3]), list(shape) if shape is not None else None)


def _fill_unknown_shapes(args: Any) -> None:
    """Placeholders whose shape was not learned get shape [None]: Keras 3
    needs some shape to revive them and replaces them before any use."""
    if isinstance(args, dict) and args.get("class_name") == "__keras_tensor__":
        if args["config"]["shape"] is None:
            args["config"]["shape"] = [None]
    elif isinstance(args, dict):
        for item in args.values():
            _fill_unknown_shapes(item)
    elif isinstance(args, list):
        for item in args:
            _fill_unknown_shapes(item)


def _is_shape_list(value: Any, count: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == count
        and all(item is None or isinstance(item, list) for item in value)
    )


# --- Back to tf.keras 2 -----------------------------------------------------


def to_legacy_config(keras3_config: dict, legacy_template: dict) -> dict:
    """Write the initializers of a Keras 3 config into the legacy original.

    Layers are matched by name, nested models by their path ("outer/inner"),
    wrapped layers (Bidirectional, TimeDistributed) by their slot. Every
    initializer in `INITIALIZER_ATTRIBUTES` that both configs hold is
    replaced by the Keras 3 one written in tf.keras 2 style, e.g.
    ``{"class_name": "VarianceScaling", "config": {"scale": s, "mode":
    "fan_in", "distribution": "truncated_normal", "seed": n}}``. Nothing else
    in the template changes.

    Raises:
        LegacyConfigError: a Keras 3 layer holding an initializer has no
            counterpart in the template, or an initializer has no tf.keras 2
            equivalent.
    """
    result = copy.deepcopy(legacy_template)
    legacy_layers = dict(_layers_by_path(result))
    for path, layer in _layers_by_path(keras3_config):
        config = layer.get("config") or {}
        attributes = [a for a in INITIALIZER_ATTRIBUTES if isinstance(config.get(a), (dict, str))]
        if not attributes:
            continue
        target = legacy_layers.get(path)
        if target is None and path.endswith(":backward_layer"):
            target = _legacy_backward_layer(legacy_layers, path, config, attributes)
            if target is _SAME_AS_FORWARD:
                continue
        if target is None:
            raise LegacyConfigError(
                f"Layer {path!r} ({layer.get('class_name')}) of the Keras 3 config "
                "has no counterpart in the legacy template; expected both configs "
                f"to describe the same model. Template layers: {sorted(legacy_layers)}."
            )
        target_config = target.setdefault("config", {})
        for attribute in attributes:
            if attribute in target_config:
                target_config[attribute] = _legacy_initializer(
                    config[attribute], target_config[attribute], path, attribute
                )
    return result


_SAME_AS_FORWARD: dict = {}


def _legacy_backward_layer(
    legacy_layers: dict[str, dict], path: str, config: dict, attributes: list[str]
) -> dict | None:
    """A tf.keras 2 Bidirectional without `backward_layer` mirrors its forward
    layer. Keep it so when the Keras 3 backward initializers equal the forward
    ones; otherwise write an explicit `backward_layer` into the template."""
    wrapper = legacy_layers.get(path.rsplit(":", 1)[0])
    forward = legacy_layers.get(path.rsplit(":", 1)[0] + ":layer")
    if wrapper is None or forward is None:
        return None
    forward_config = forward.get("config") or {}
    if all(
        _legacy_initializer(config[a], forward_config.get(a), path, a) == forward_config.get(a)
        for a in attributes
        if a in forward_config
    ):
        return _SAME_AS_FORWARD
    backward = copy.deepcopy(forward)
    backward_config = backward.setdefault("config", {})
    backward_config["go_backwards"] = not forward_config.get("go_backwards", False)
    # tf.keras prefixes "forward_"/"backward_" itself: keep the plain name.
    wrapper.setdefault("config", {})["backward_layer"] = backward
    legacy_layers[path] = backward
    return backward


def _layers_by_path(model: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """Yield (path, layer config) for every layer of a model config."""
    for layer in (model.get("config") or {}).get("layers", ()) or ():
        name = layer.get("name") or (layer.get("config") or {}).get("name")
        path = prefix + str(name)
        yield path, layer
        if layer.get("class_name") in _MODEL_CLASSES:
            yield from _layers_by_path(layer, path + "/")
        yield from _wrapped_by_path(layer, path)


def _wrapped_by_path(layer: dict, path: str) -> Iterator[tuple[str, dict]]:
    config = layer.get("config") or {}
    for key in _WRAPPED_LAYER_KEYS:
        if isinstance(config.get(key), dict):
            inner_path = f"{path}:{key}"
            yield inner_path, config[key]
            yield from _wrapped_by_path(config[key], inner_path)


def _legacy_initializer(value: Any, template: Any, path: str, attribute: str) -> Any:
    """A Keras 3 initializer config in tf.keras 2 style (module kept only if
    the template's initializer had one)."""
    if isinstance(value, str):
        return value
    class_name = _KERAS3_INITIALIZER_ALIASES.get(value.get("class_name"), value.get("class_name"))
    if class_name not in _LEGACY_INITIALIZER_ARGS:
        raise LegacyConfigError(
            f"Layer {path!r}: {attribute} is {class_name!r}, which tf.keras 2 "
            f"lacks; expected one of {sorted(_LEGACY_INITIALIZER_ARGS)}."
        )
    source = value.get("config") or {}
    config = {}
    for argument in _LEGACY_INITIALIZER_ARGS[class_name]:
        if argument not in source:
            continue
        item = source[argument]
        if argument == "seed" and not (isinstance(item, int) or item is None):
            item = None  # a Keras 3 SeedGenerator has no tf.keras 2 form
        if isinstance(item, dict) and item.get("class_name") == "__numpy__":
            item = (item.get("config") or {}).get("value")
        config[argument] = item
    legacy = {"class_name": class_name, "config": config}
    if isinstance(template, dict) and "module" in template:
        legacy = {"module": "keras.initializers", **legacy, "registered_name": None}
    return legacy
