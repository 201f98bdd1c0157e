"""AutoInit++ (paper, Section 7): mean-centred activations.

For an activation ``f`` let ``mu_f = E[f(z)]``, ``z ~ N(0, 1)`` (by the
quadrature of ``autoinit.estimators.gaussian``). AutoInit++ uses
``f~ = f - mu_f`` and is otherwise AutoInit. Here that is a rewrite of the
model's Keras config, done before AutoInit's usual pass: after every
elementwise activation with ``|mu_f| > 1e-7`` a built-in
``Rescaling(scale=1.0, offset=-mu_f)`` layer named ``{layer}_centered`` is
inserted, so the result loads in stock Keras without custom objects.

* ``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU`` and ``PReLU`` layers (PReLU
  at its initial slope, from a ``Zeros``/``Constant`` ``alpha_initializer``;
  others are skipped) get a ``Rescaling`` after them.
* A weighted layer with a fused activation (``Dense(..., activation="relu")``,
  convolutions, ``EinsumDense``) is split: the layer keeps its name and
  weights with ``activation="linear"``, followed by ``Activation(f)`` named
  ``{layer}_activation`` and the ``Rescaling``. Every consumer of the layer's
  output is rewired to the ``Rescaling`` (each call of a shared layer gets its
  own calls of the new layers).
* Nested models are rewritten recursively.

The shift assumes the paper's N(0, 1) pre-activation, which AutoInit gives
every weighted layer's output at the default ``signal_variance=1``; where an
activation's input is not standard normal (after a residual addition, with
another ``signal_variance``, under other initializers) its centred output
has a mean near, not at, zero.

Left as they are: axis-wise activations (softmax, log_softmax, glu, ...),
activations inside recurrent cells and wrappers (``LSTM``, ``GRU``,
``Bidirectional``, ``TimeDistributed``: their activations are not layers of
the graph), activations whose output is a model output (the prediction, e.g.
sigmoid probabilities, keeps its range), activations already followed by the
matching ``Rescaling`` (the rewrite is idempotent), and custom activations
that cannot be evaluated (a warning says which).
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from autoinit.errors import ModelConfigError, UnsupportedLayerWarning
from autoinit.estimators.activations import ACTIVATIONS, AXIS_ACTIVATIONS, Activation, elu_family, relu_family
from autoinit.estimators.gaussian import gaussian_moments
from autoinit.keras_facts import ACTIVATION_FUNCTION_MODULES, MODEL_CLASSES, MODELLED_LAYERS

__all__ = [
    "CENTER_TOLERANCE",
    "CenteredActivation",
    "gaussian_mean",
    "center_config",
    "center_model",
    "load_centered",
]

CENTER_TOLERANCE = 1e-7
"""Activations with ``|mu_f|`` at most this are left alone (tanh, selu, ...)."""

#: Layers with a fused ``activation`` argument: Dense-like and the convolutional family.
FUSED_ACTIVATION_LAYERS = MODELLED_LAYERS["convolutional"] | {"Dense", "EinsumDense"}
#: Activation layers that act elementwise (Softmax normalizes across an axis).
ACTIVATION_LAYERS = MODELLED_LAYERS["activations"] - {"Softmax"}


@dataclass(frozen=True)
class CenteredActivation:
    """One activation AutoInit++ centred.

    Attributes:
        layer: path of the layer whose activation was centred (``outer/inner``).
        activation: the activation, e.g. ``"relu"`` or ``"LeakyReLU(0.3)"``.
        mean: ``mu_f = E[f(z)]``, ``z ~ N(0, 1)``; the offset is ``-mean``.
        rescaling: path of the inserted ``Rescaling`` layer.
        split: True when a fused activation was split off a weighted layer.
    """

    layer: str
    activation: str
    mean: float
    rescaling: str
    split: bool


def gaussian_mean(activation: Activation) -> float:
    """``E[f(z)]`` for ``z ~ N(0, 1)`` by quadrature."""
    return float(gaussian_moments(activation.fn, 0.0, 1.0, activation.key)[0])


# --------------------------------------------------------------------------- #
# Which activation a layer config applies
# --------------------------------------------------------------------------- #
def _class_name(entry: Mapping[str, Any]) -> str:
    return str(entry.get("class_name", ""))


def _is_builtin(entry: Mapping[str, Any]) -> bool:
    module = entry.get("module")
    return module is None or str(module).startswith("keras")


def _is_model(entry: Mapping[str, Any]) -> bool:
    config = entry.get("config")
    return _class_name(entry) in MODEL_CLASSES and isinstance(config, Mapping) and "layers" in config


def _function_name(spec: Any) -> str | None:
    """The registered name of a built-in activation spec (string or Keras 3 function dict)."""
    if isinstance(spec, str):
        return spec
    if (
        isinstance(spec, Mapping)
        and spec.get("class_name") == "function"
        and spec.get("module") in ACTIVATION_FUNCTION_MODULES
        and isinstance(spec.get("config"), str)
    ):
        return spec["config"]
    return None


def _resolve_with_keras(spec: Any, custom_objects: Mapping[str, Any] | None) -> Activation | str | None:
    """An estimator ``Activation`` for a custom/unnamed activation spec, via Keras; None if it cannot be built."""
    import keras

    from autoinit.keras_adapter.activations import resolve_activation

    try:
        with keras.saving.custom_object_scope(dict(custom_objects or {})):
            fn = (
                keras.activations.get(spec)
                if isinstance(spec, str)
                else keras.saving.deserialize_keras_object(spec)
            )
        return resolve_activation(fn)
    except Exception:  # noqa: BLE001 - any failure means: cannot evaluate, leave uncentred
        return None


def _spec_activation(spec: Any, custom_objects: Mapping[str, Any] | None) -> tuple[str, Activation] | None:
    if spec is None:
        return None
    name = _function_name(spec)
    if name == "linear" or name in AXIS_ACTIVATIONS:
        return None
    if name in ACTIVATIONS:
        return name, ACTIVATIONS[name]
    resolved = _resolve_with_keras(spec, custom_objects)
    if isinstance(resolved, Activation):
        label = (
            name
            if name is not None
            else str(spec.get("config", "custom") if isinstance(spec, Mapping) else spec)
        )
        return label, resolved
    if resolved is None:
        warnings.warn(
            f"AutoInit++ cannot evaluate activation {spec!r}: it is left uncentred. "
            "Pass its function in custom_objects to centre it.",
            UnsupportedLayerWarning,
            stacklevel=2,
        )
    return None  # an axis-wise activation (softmax, ...)


def _prelu_slope(config: Mapping[str, Any]) -> float | None:
    init = config.get("alpha_initializer")
    kind = init.get("class_name") if isinstance(init, Mapping) else init
    if kind in ("Zeros", "zeros"):
        return 0.0
    if kind == "Constant" and isinstance(init, Mapping):
        return float(init.get("config", {}).get("value", 0.0))
    return None


def _layer_activation(
    entry: Mapping[str, Any], custom_objects: Mapping[str, Any] | None
) -> tuple[str, Activation, bool] | None:
    """``(label, activation, fused)`` for a layer config that applies an
    elementwise activation, else None."""
    kind = _class_name(entry)
    config = entry.get("config") or {}
    if not _is_builtin(entry) or not isinstance(config, Mapping):
        return None
    if kind in FUSED_ACTIVATION_LAYERS or kind == "Activation":
        found = _spec_activation(config.get("activation"), custom_objects)
        return None if found is None else (*found, kind != "Activation")
    if kind == "ReLU":
        slope, top, threshold = (
            float(config.get("negative_slope", 0.0)),
            config.get("max_value"),
            float(config.get("threshold", 0.0)),
        )
        top = None if top is None else float(top)
        label = "ReLU"
        if (slope, top, threshold) != (0.0, None, 0.0):
            label = f"ReLU(negative_slope={slope}, max_value={top}, threshold={threshold})"
        return label, relu_family(slope, top, threshold), False
    if kind == "LeakyReLU":
        slope = float(config.get("negative_slope", config.get("alpha", 0.3)))
        return f"LeakyReLU({slope})", relu_family(negative_slope=slope), False
    if kind == "ELU":
        alpha = float(config.get("alpha", 1.0))
        return f"ELU({alpha})", elu_family(alpha), False
    if kind == "PReLU":
        slope = _prelu_slope(config)
        return None if slope is None else (f"PReLU({slope})", relu_family(negative_slope=slope), False)
    return None


# --------------------------------------------------------------------------- #
# Config plumbing
# --------------------------------------------------------------------------- #
def _all_names(model_config: Mapping[str, Any]) -> set[str]:
    names = {str(model_config.get("config", {}).get("name", ""))}
    for entry in model_config.get("config", {}).get("layers", []):
        names.add(str(entry.get("name") or entry.get("config", {}).get("name", "")))
        if _is_model(entry):
            names |= _all_names(entry)
    return names


class _Namer:
    """Unique derived names across the whole config tree."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name


def _tensor_refs(data: Any) -> Iterator[dict]:
    """Every serialized Keras tensor (``{"class_name": "__keras_tensor__", ...}``) inside ``data``."""
    if isinstance(data, Mapping):
        if data.get("class_name") == "__keras_tensor__" and isinstance(data.get("config"), Mapping):
            yield data  # type: ignore[misc]
            return
        for value in data.values():
            yield from _tensor_refs(value)
    elif isinstance(data, list):
        for value in data:
            yield from _tensor_refs(value)


def _history_triplets(data: Any) -> Iterator[list]:
    """``[layer, node, tensor]`` triplets in ``input_layers``/``output_layers`` (any nesting)."""
    if (
        isinstance(data, list)
        and len(data) == 3
        and isinstance(data[0], str)
        and all(isinstance(i, int) for i in data[1:])
    ):
        yield data
    elif isinstance(data, list):
        for value in data:
            yield from _history_triplets(value)
    elif isinstance(data, Mapping):
        for value in data.values():
            yield from _history_triplets(value)


def _tensor(layer: str, node: int, like: Mapping[str, Any]) -> dict:
    config = like["config"]
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": copy.deepcopy(config.get("shape")),
            "dtype": config.get("dtype"),
            "keras_history": [layer, node, 0],
        },
    }


def _new_layer(class_name: str, name: str, dtype: Any, **fields: Any) -> dict:
    config = {"name": name, "trainable": True, "dtype": copy.deepcopy(dtype), **fields}
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def _is_matching_rescaling(entry: Mapping[str, Any] | None, mean: float) -> bool:
    if entry is None or _class_name(entry) != "Rescaling" or not _is_builtin(entry):
        return False
    config = entry.get("config") or {}
    scale, offset = config.get("scale"), config.get("offset")
    if not isinstance(scale, (int, float)) or not isinstance(offset, (int, float)):
        return False
    return scale == 1.0 and math.isclose(offset, -mean, rel_tol=1e-6, abs_tol=1e-9)


class _Rewriter:
    def __init__(self, namer: _Namer, custom_objects: Mapping[str, Any] | None) -> None:
        self.namer = namer
        self.custom_objects = custom_objects
        self.centered: list[CenteredActivation] = []

    def model(
        self,
        entry: dict,
        prefix: str,
        outputs_protected: bool,
        output_likes: Mapping[int, dict] | None = None,
    ) -> None:
        """Rewrite a (nested) model config in place. ``outputs_protected``:
        its outputs are the top-level model's outputs, left uncentred."""
        if _class_name(entry) == "Sequential":
            self.sequential(entry["config"], prefix, outputs_protected)
        else:
            self.functional(entry["config"], prefix, outputs_protected, output_likes or {})

    def _centering(self, entry: Mapping[str, Any]) -> tuple[str, Activation, bool, float] | None:
        found = _layer_activation(entry, self.custom_objects)
        if found is None:
            return None
        label, activation, fused = found
        mean = gaussian_mean(activation)
        if not math.isfinite(mean) or abs(mean) <= CENTER_TOLERANCE:
            return None
        return label, activation, fused, mean

    def _record(self, prefix: str, name: str, label: str, mean: float, rescaling: str, fused: bool) -> None:
        self.centered.append(CenteredActivation(prefix + name, label, mean, prefix + rescaling, fused))

    # -- Sequential: insert after ------------------------------------------------
    def sequential(self, config: dict, prefix: str, outputs_protected: bool) -> None:
        layers = config.get("layers", [])
        result: list[dict] = []
        for i, entry in enumerate(layers):
            result.append(entry)
            last = i == len(layers) - 1
            name = str(entry.get("config", {}).get("name", f"layer{i}"))
            if _is_model(entry):
                self.model(entry, f"{prefix}{name}/", outputs_protected and last)
                continue
            found = self._centering(entry)
            if found is None or (last and outputs_protected):
                continue
            label, _activation, fused, mean = found
            following = layers[i + 1] if not last else None
            if not fused and _is_matching_rescaling(following, mean):
                continue
            dtype = entry["config"].get("dtype")
            if fused:
                spec = entry["config"]["activation"]
                entry["config"]["activation"] = "linear"
                result.append(
                    _new_layer("Activation", self.namer(f"{name}_activation"), dtype, activation=spec)
                )
            rescaling = self.namer(f"{name}_centered")
            result.append(_new_layer("Rescaling", rescaling, dtype, scale=1.0, offset=-mean))
            self._record(prefix, name, label, mean, rescaling, fused)
        config["layers"] = result

    # -- Functional: insert after every call, rewire consumers -------------------------
    def functional(
        self, config: dict, prefix: str, outputs_protected: bool, output_likes: Mapping[int, dict]
    ) -> None:
        layers: list[dict] = config.get("layers", [])
        outputs = list(_history_triplets(config.get("output_layers")))
        output_names = {t[0] for t in outputs}
        consumers: dict[str, list[tuple[dict, dict]]] = {}  # layer -> [(consumer entry, tensor ref)]
        for entry in layers:
            for ref in _tensor_refs(entry.get("inbound_nodes", [])):
                history = ref["config"].get("keras_history") or [None]
                consumers.setdefault(str(history[0]), []).append((entry, ref))
        redirect: dict[str, str] = {}
        result: list[dict] = []
        for entry in layers:
            result.append(entry)
            name = str(entry.get("name") or entry.get("config", {}).get("name"))
            refs = consumers.get(name, [])
            if _is_model(entry):
                likes = {ref["config"]["keras_history"][2]: ref for _, ref in refs}
                self.model(entry, f"{prefix}{name}/", outputs_protected and name in output_names, likes)
                continue
            found = self._centering(entry)
            if found is None or (outputs_protected and name in output_names):
                continue
            label, _activation, fused, mean = found
            if (
                not fused
                and refs
                and name not in output_names
                and all(_is_matching_rescaling(c, mean) for c, _ in refs)
            ):
                continue  # already centred
            nodes = len(entry.get("inbound_nodes") or [])
            like = self._output_likes(name, nodes, refs, outputs, output_likes)
            if nodes == 0 or like is None:
                continue  # a call whose output tensor is described nowhere: leave it
            dtype = entry["config"].get("dtype")
            source = name
            if fused:
                spec = entry["config"]["activation"]
                entry["config"]["activation"] = "linear"
                source = self.namer(f"{name}_activation")
                result.append(_called(_new_layer("Activation", source, dtype, activation=spec), name, like))
            rescaling = self.namer(f"{name}_centered")
            result.append(
                _called(_new_layer("Rescaling", rescaling, dtype, scale=1.0, offset=-mean), source, like)
            )
            redirect[name] = rescaling
            self._record(prefix, name, label, mean, rescaling, fused)
        for name, target in redirect.items():
            for _consumer, ref in consumers.get(name, []):
                ref["config"]["keras_history"][0] = target
            for triplet in outputs:
                if triplet[0] == name:
                    triplet[0] = target
        config["layers"] = result

    @staticmethod
    def _output_likes(
        name: str,
        nodes: int,
        refs: list[tuple[dict, dict]],
        outputs: list[list],
        output_likes: Mapping[int, dict],
    ) -> list[dict] | None:
        """Per call of layer ``name``, a serialized tensor describing its output
        (shape, dtype), from a consumer or, for a nested model's output, from
        the parent's consumers; None if some call has none."""
        by_node: dict[int, dict] = {}
        for _consumer, ref in refs:
            by_node.setdefault(int(ref["config"]["keras_history"][1]), ref)
        for position, (layer, node, _tensor_index) in enumerate(outputs):
            if layer == name and node not in by_node and position in output_likes:
                by_node[node] = output_likes[position]
        if any(k not in by_node for k in range(nodes)):
            return None
        return [by_node[k] for k in range(nodes)]


def _called(layer: dict, source: str, like: list[dict]) -> dict:
    """``layer`` (a new layer entry) called once on each call's output of ``source``."""
    layer["name"] = layer["config"]["name"]
    layer["inbound_nodes"] = [{"args": [_tensor(source, k, ref)], "kwargs": {}} for k, ref in enumerate(like)]
    return layer


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #
def center_config(
    config: Any, custom_objects: Mapping[str, Any] | None = None
) -> tuple[dict, list[CenteredActivation]]:
    """AutoInit++'s rewrite of a model config (dict or JSON; not modified).

    Returns:
        ``(new_config, centered)``: the rewritten full config (``class_name``
        ``Functional``/``Sequential``) and one ``CenteredActivation`` per
        activation that got a ``Rescaling``, in config order.
    """
    from autoinit.keras_adapter.loading import normalize_config

    normalized = normalize_config(config)
    try:  # a deep copy with lists for tuples (serialize_keras_object output has tuples)
        rewritten = json.loads(json.dumps(normalized))
    except (TypeError, ValueError) as error:
        raise ModelConfigError(f"Expected a JSON-serializable model config. Received: {error}") from None
    if not _is_model(rewritten):
        raise ModelConfigError(
            "center_activations (AutoInit++) inserts layers into a Functional or Sequential config's "
            f"layer list; expected a model config with 'layers'. Received: class_name={_class_name(rewritten)!r}"
            " (a keras_hub backbone's config holds its arguments, not layers)"
        )
    rewriter = _Rewriter(_Namer(_all_names(rewritten)), custom_objects)
    rewriter.model(rewritten, "", outputs_protected=True)
    return rewritten, rewriter.centered


def _copy_weights(source: Any, target: Any) -> None:
    """Copy weights layer by layer, by name (nested models recursively)."""
    import keras

    for layer in source.layers:
        counterpart = target.get_layer(layer.name)
        if isinstance(layer, keras.Model):
            _copy_weights(layer, counterpart)
        elif layer.weights:
            counterpart.set_weights(layer.get_weights())


def center_model(
    model: Any, custom_objects: Mapping[str, Any] | None = None
) -> tuple[Any, list[CenteredActivation]]:
    """AutoInit++'s rewrite of a built ``keras.Model``.

    Returns ``(model, centered)``. When nothing needs centring the given model
    itself comes back; otherwise a new model, rebuilt from the rewritten
    config, carrying the given model's weights (layers keep their names). The
    given model is never modified.
    """
    import keras

    rewritten, centered = center_config(model.to_json(), custom_objects)
    if not centered:
        return model, centered
    try:
        with keras.saving.custom_object_scope(dict(custom_objects or {})):
            # The caller's own in-memory model: rebuilding it runs nothing it did not already run.
            rebuilt = keras.saving.deserialize_keras_object(rewritten, safe_mode=False)
    except Exception as error:
        raise ModelConfigError(
            f"AutoInit++ could not rebuild model '{model.name}' from its config after centring "
            f"({type(error).__name__}: {error}). Custom layers need custom_objects."
        ) from error
    _copy_weights(model, rebuilt)
    return rebuilt, centered


def load_centered(
    model_or_config: Any, custom_objects: Mapping[str, Any] | None = None
) -> tuple[Any, list[CenteredActivation]]:
    """A built, AutoInit++-rewritten model from a model, config dict or JSON string."""
    import keras

    from autoinit.keras_adapter.loading import load_model

    if isinstance(model_or_config, keras.Model):
        return center_model(model_or_config, custom_objects)
    rewritten, centered = center_config(model_or_config, custom_objects)
    return load_model(rewritten, custom_objects), centered
