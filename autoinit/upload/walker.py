"""Walk a model config and refuse anything not on the allow-list.

Everything refused raises an `UnsafeConfigError` whose message names what
was found, the JSON path to it and the layer that holds it. Because the
tf.keras 2 converter runs before this walk, entries without a ``module`` key
(tf.keras 2 style) are accepted when their ``class_name`` is allow-listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from autoinit import keras_facts
from autoinit.errors import ModelConfigError, UnsafeConfigError
from autoinit.upload.allow_list import (
    ACTIVATION_FUNCTION_MODULES,
    KERAS_ACTIVATIONS,
    LAYER_CLASSES,
    LEGACY_CLASSES,
    MODEL_CLASSES,
    REFUSED_CLASSES,
    SPECIAL_MARKERS,
    WRAPPED_LAYER_KEYS,
    allowed_classes,
    is_activation_key,
    is_identifier,
    is_keras_object_key,
    is_path_key,
    why_refused,
)
from autoinit.upload.arguments import check_layer_arguments
from autoinit.upload.hub_arguments import check_hub_arguments, hub_refusal
from autoinit.upload.hub_sizes import backbone_layer_count, inner_layer_count
from autoinit.upload.limits import UploadLimits
from autoinit.upload.params import parameter_bound
from autoinit.upload.paths import Holder, Path, format_path, object_name, short
from autoinit.upload.paths import where as _where
from autoinit.upload.structure import check_model_structure

__all__ = ["ConfigSummary", "validate_model_config"]

HUB_BACKBONE_NAMES = frozenset().union(*keras_facts.HUB_BACKBONES.values())
HUB_LAYER_NAMES = frozenset().union(*keras_facts.HUB_UPLOAD_LAYERS.values())


def _is_hub(module: str | None, class_name: str) -> bool:
    return keras_facts.is_hub_backbone(module, class_name) or keras_facts.is_hub_layer(module, class_name)


def _hub_reason(config: Mapping[str, Any]) -> str:
    """`` (why)`` for a keras_hub object that is not a vetted backbone, else ``""``."""
    module, class_name = config.get("module"), config.get("class_name")
    if not isinstance(module, str) or module.split(".")[0] != keras_facts.HUB_PACKAGE:
        return ""
    if keras_facts.is_hub_layer(module, class_name):
        return " (a keras_hub layer: upload a model that uses it)"
    return f" ({hub_refusal(str(class_name))})"


@dataclass(frozen=True)
class ConfigSummary:
    """What `validate_model_config` counted while walking a config.

    Args:
        num_layers: layers and models, nested ones included.
        max_depth: deepest JSON nesting seen (the root object is depth 1).
        class_counts: how many layers/models of each ``class_name``.
        estimated_params: an upper bound on the parameters Keras builds,
            from the shapes the config states (see
            `autoinit.upload.params.parameter_bound`): never below
            ``model.count_params()``.
    """

    num_layers: int
    max_depth: int
    class_counts: Mapping[str, int] = field(default_factory=dict)
    estimated_params: int = 0


def validate_model_config(
    config: Mapping[str, Any],
    limits: UploadLimits = UploadLimits(),
    *,
    extra_allowed: Mapping[str, Set[str]] | None = None,
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
    if not isinstance(top_class, str) or not (
        top_class in MODEL_CLASSES or keras_facts.is_hub_backbone(config.get("module"), top_class)
    ):
        reason = _hub_reason(config)
        # A keras_hub class that is not vetted may read files: refused as unsafe, not as malformed.
        raise (UnsafeConfigError if reason else ModelConfigError)(
            "Expected a model config whose class_name is one of "
            f"{sorted(MODEL_CLASSES)}, or a keras_hub backbone ({', '.join(sorted(HUB_BACKBONE_NAMES))}). "
            f"Received: class_name={short(top_class)}{reason}."
        )
    walker = _ConfigWalker(limits, extra_allowed or {})
    walker.walk(config)
    for layer_config, path, layer, hub in walker.layer_configs:
        check_layer_arguments(layer_config, path, layer)
        if hub:
            check_hub_arguments(layer[1], layer_config, path, layer)
    walker.count_hub_layers()
    check_model_structure(config, limits.max_depth)
    estimated_params = parameter_bound(config, limit=limits.max_params)
    return ConfigSummary(
        num_layers=walker.num_layers,
        max_depth=walker.max_depth,
        class_counts=dict(walker.class_counts),
        estimated_params=estimated_params,
    )


class _ConfigWalker:
    """One pass over a config; holds the counts and the allow-list."""

    def __init__(self, limits: UploadLimits, extra: Mapping[str, Set[str]]) -> None:
        self.limits = limits
        self.extra = {m: frozenset(names) for m, names in extra.items()}
        self.allowed = allowed_classes()  # read now: facts tests extend OP_NODES
        for module, names in self.extra.items():
            self.allowed[module] = self.allowed.get(module, frozenset()) | names
        self.num_layers = 0
        self.max_depth = 0
        self.class_counts: Counter[str] = Counter()
        # (config, its path, the layer, whether it is a vetted keras_hub class)
        self.layer_configs: list[tuple[Any, Path, Holder, bool]] = []

    def walk(self, config: Mapping[str, Any]) -> None:
        """Visit every value, depth first, with an explicit stack (no
        recursion: the config is untrusted and may be nested deeply)."""
        self._pending: list[tuple[Any, Path, int, str | int | None, Holder]] = [(config, (), 1, None, None)]
        while self._pending:
            self.visit(*self._pending.pop())

    def _push(self, items: list[tuple[Any, Path, int, str | int | None, Holder]]) -> None:
        self._pending.extend(reversed(items))  # popped in document order

    def visit(
        self,
        value: Any,
        path: Path,
        depth: int,
        key: str | int | None,
        layer: Holder,
    ) -> None:
        if is_activation_key(key):
            self._check_activation(value, path, layer)
        if isinstance(value, Mapping):
            self._enter(depth, path, layer)
            self._visit_dict(value, path, depth, key, layer)
        elif isinstance(value, (list, tuple)):
            self._enter(depth, path, layer)
            self._push([(item, path + (index,), depth + 1, None, layer) for index, item in enumerate(value)])
        elif isinstance(value, str):
            self._check_string(value, path, key, layer)
        elif value is None or isinstance(value, (bool, int, float)):
            return
        else:
            raise ModelConfigError(
                "Expected only JSON values in the config. Received a "
                f"{type(value).__name__} {_where(path, layer)}."
            )

    def _enter(self, depth: int, path: Path, layer: Holder) -> None:
        if depth > self.limits.max_depth:
            raise ModelConfigError(
                f"The config is nested deeper than {self.limits.max_depth} "
                f"levels {_where(path, layer)}; refusing it."
            )
        self.max_depth = max(self.max_depth, depth)

    def _visit_dict(
        self,
        value: Mapping[str, Any],
        path: Path,
        depth: int,
        key: str | int | None,
        layer: Holder,
    ) -> None:
        for name, item in value.items():
            if not isinstance(name, str):
                raise ModelConfigError(f"Expected string keys. Received {name!r} {_where(path, layer)}.")
            if name.startswith("__") and not (name == "__passive_serialization__" and item is True):
                raise UnsafeConfigError(
                    f"Key {name!r} looks like a Keras serialization marker "
                    f"and is refused {_where(path + (name,), layer)}."
                )
        if "class_name" in value:
            self._visit_object(value, path, depth, key, layer)
            return
        self._push([(item, path + (name,), depth + 1, name, layer) for name, item in value.items()])

    def _visit_object(
        self,
        obj: Mapping[str, Any],
        path: Path,
        depth: int,
        key: str | int | None,
        layer: Holder,
    ) -> None:
        class_name = obj["class_name"]
        if not isinstance(class_name, str):
            raise ModelConfigError(
                f"Expected class_name to be a string. Received {class_name!r} {_where(path, layer)}."
            )
        own_name = object_name(obj)
        if class_name in REFUSED_CLASSES:
            label = f"layer {own_name!r}" if own_name else "layer"
            raise UnsafeConfigError(
                f"{REFUSED_CLASSES[class_name]} and are refused ({label} at {format_path(path)})."
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
            what = SPECIAL_MARKERS.get(class_name, "a Keras serialization marker")
            raise UnsafeConfigError(
                f"Found {what} (class_name {class_name!r}), which Keras would "
                f"turn into code or data; refused {_where(path, layer)}."
            )

        # Entries in a layer position speak for themselves in messages.
        positioned = key is None or key in WRAPPED_LAYER_KEYS
        subject = (own_name, class_name) if own_name and positioned else layer
        module = self._check_module(obj, class_name, path, subject)
        self._check_registered_name(obj, class_name, module, path, subject)
        hub = _is_hub(module, class_name)
        if hub:
            self._check_hub_position(module, class_name, path, key, subject)

        if self._is_layer(class_name, module, key):
            layer = (own_name or "?", class_name)
            self._count_layer(obj, class_name, path, layer)
            # Checked after the walk, so unsafe content is reported first.
            self.layer_configs.append((obj.get("config"), path + ("config",), layer, hub))
        compile_config = obj.get("compile_config")
        if compile_config:
            raise UnsafeConfigError(
                "compile_config (optimizer, losses, metrics) is not accepted: "
                "AutoInit never compiles, and Keras would deserialize it. "
                "Remove it (drop_compile_config does) or save the model "
                f"uncompiled {_where(path + ('compile_config',), layer)}."
            )
        self._visit_children(obj, path, depth, layer)

    def _visit_children(self, obj: Mapping[str, Any], path: Path, depth: int, layer: Holder) -> None:
        self._push(
            [
                (item, path + (name,), depth + 1, name, layer)
                for name, item in obj.items()
                # class_name, module, registered_name: checked by _visit_object
                if name not in ("class_name", "module", "registered_name")
            ]
        )

    def _check_module(
        self,
        obj: Mapping[str, Any],
        class_name: str,
        path: Path,
        layer: Holder,
    ) -> str | None:
        where = _where(path, layer)
        if "module" not in obj:
            if class_name not in LEGACY_CLASSES:
                raise UnsafeConfigError(
                    f"Class {class_name!r} is not on the allow-list of Keras "
                    f"classes AutoInit accepts{why_refused(class_name)} {where}."
                )
            return None
        module = obj["module"]
        if module is None:
            raise UnsafeConfigError(
                f"Class {class_name!r} has module null: it is a custom class "
                f"defined in a script, and custom code is refused {where}."
            )
        if not isinstance(module, str):
            raise ModelConfigError(f"Expected module to be a string. Received {module!r} {where}.")
        allowed = self.allowed.get(module)
        if allowed is None and module.split(".")[0] == keras_facts.HUB_PACKAGE:
            raise UnsafeConfigError(
                f"keras_hub's {class_name} (module {module!r}) is refused: {hub_refusal(class_name)}. "
                f"Accepted from keras_hub: the backbones {', '.join(sorted(HUB_BACKBONE_NAMES))} "
                f"and the layers {', '.join(sorted(HUB_LAYER_NAMES))} {where}."
            )
        if allowed is None:
            keras_owned = module == "keras" or module.startswith("keras.")
            detail = (
                "is not one of the Keras modules AutoInit accepts"
                if keras_owned
                else "is not part of Keras; only Keras' own classes (and "
                "AutoInit's registered ones) are accepted"
            )
            raise UnsafeConfigError(f"Module {module!r} (class {class_name!r}) {detail} {where}.")
        if class_name not in allowed:
            raise UnsafeConfigError(
                f"Class {class_name!r} from module {module!r} is not on the "
                f"allow-list of classes AutoInit accepts{why_refused(class_name)} "
                f"{where}."
            )
        return module

    def _check_registered_name(
        self,
        obj: Mapping[str, Any],
        class_name: str,
        module: str | None,
        path: Path,
        layer: Holder,
    ) -> None:
        registered = obj.get("registered_name")
        if registered is None or registered == class_name:
            return
        if module is not None and class_name in self.extra.get(module, ()):
            if registered == f"{module.split('.')[0]}>{class_name}":
                return
        if _is_hub(module, class_name) and registered == keras_facts.hub_registered_name(class_name):
            return  # what keras_hub registers its classes under
        raise UnsafeConfigError(
            f"registered_name {registered!r} differs from class_name "
            f"{class_name!r}: Keras would look it up among registered custom "
            f"objects instead of its built-ins; refused {_where(path, layer)}."
        )

    def _is_layer(self, class_name: str, module: str | None, key: str | int | None) -> bool:
        if module is None:  # tf.keras 2 entry: judge by name and position
            if class_name in MODEL_CLASSES:
                return True
            return class_name in LAYER_CLASSES and (key is None or key in WRAPPED_LAYER_KEYS)
        if class_name in MODEL_CLASSES:
            return True
        return (
            module == "keras.layers"
            or keras_facts.is_op_node(module, class_name)
            or keras_facts.is_application_layer(module, class_name)
            or _is_hub(module, class_name)
        )

    def _check_hub_position(
        self, module: str | None, class_name: str, path: Path, key: str | int | None, layer: Holder
    ) -> None:
        """A backbone only as the uploaded model itself; a layer only where layers go."""
        if keras_facts.is_hub_backbone(module, class_name):
            if path:
                raise UnsafeConfigError(
                    f"keras_hub's {class_name} is accepted only as the uploaded model itself, "
                    f"not inside another model or layer {_where(path, layer)}."
                )
        elif not (key is None or key in WRAPPED_LAYER_KEYS) or not path:
            raise UnsafeConfigError(
                f"keras_hub's {class_name} is accepted only as a layer of a model {_where(path, layer)}."
            )

    def count_hub_layers(self) -> None:
        """Add the layers vetted keras_hub classes build inside (a backbone's
        blocks, a transformer layer's projections); their arguments are checked."""
        for config, path, layer, hub in self.layer_configs:
            if not hub:
                continue
            class_name = layer[1]
            inner = (
                backbone_layer_count(config)
                if class_name in HUB_BACKBONE_NAMES
                else inner_layer_count(class_name)
            )
            self.num_layers += inner
            if self.num_layers > self.limits.max_layers:
                raise ModelConfigError(
                    f"The config has more than {self.limits.max_layers} layers "
                    f"(counting nested ones: keras_hub's {class_name} builds {inner:,}); "
                    f"refusing it {_where(path[:-1], layer)}."
                )

    def _count_layer(
        self,
        obj: Mapping[str, Any],
        class_name: str,
        path: Path,
        layer: Holder,
    ) -> None:
        self.num_layers += 1
        self.class_counts[class_name] += 1
        if self.num_layers > self.limits.max_layers:
            raise ModelConfigError(
                f"The config has more than {self.limits.max_layers} layers "
                f"(counting nested ones); refusing it {_where(path, layer)}."
            )

    def _check_activation(self, value: Any, path: Path, layer: Holder) -> None:
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
            f"Expected an activation name such as 'relu'. Received {short(value)} {_where(path, layer)}."
        )

    def _check_function(
        self,
        obj: Mapping[str, Any],
        path: Path,
        key: str | int | None,
        layer: Holder,
    ) -> None:
        module, name = obj.get("module"), obj.get("config")
        where = _where(path, layer)
        if not is_activation_key(key):
            raise UnsafeConfigError(
                f"Found a serialized function (module {module!r}, name "
                f"{name!r}); functions are accepted only as Keras activations "
                f"{where}."
            )
        if module not in ACTIVATION_FUNCTION_MODULES or (name not in KERAS_ACTIVATIONS):
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

    def _check_string(self, value: str, path: Path, key: str | int | None, layer: Holder) -> None:
        if value.startswith("__"):
            raise UnsafeConfigError(
                f"String {short(value)} looks like a Keras serialization "
                f"marker and is refused {_where(path, layer)}."
            )
        if is_keras_object_key(key) and not is_identifier(value):
            # Keras looks such strings up among registered custom objects
            # ("package>Name"); built-ins are plain names like "he_normal".
            raise UnsafeConfigError(
                f"Expected a Keras name such as 'glorot_uniform' for {key!r}. "
                f"Received {short(value)} {_where(path, layer)}."
            )
        if is_path_key(key):
            raise UnsafeConfigError(
                f"Argument {key!r} names a file ({short(value)}); AutoInit "
                f"does not let uploads read files from the server "
                f"{_where(path, layer)}."
            )
