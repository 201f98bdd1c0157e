"""An upper bound on a model's parameters, from the shapes its config states.

Keras creates a layer's weights from the input shape it is built with: the
``build_config`` written into the config, or the shape that reaches the layer
through the graph from the model's inputs (``InputLayer.batch_shape``,
``Sequential.build_input_shape``). `parameter_bound` follows both: it
propagates shapes through the graph for the common layer families, counts
each weighted layer's parameters for every shape it may be built with, and
keeps the largest. Dimensions are upper bounds (a ``valid`` convolution is
counted as ``same``), so the total is never below what Keras builds.

Where a weighted layer's input width can be found neither way, the config is
refused: a config without input shapes cannot be checked, and the worker
must never build what the API would have refused.

Example:
    >>> parameter_bound({"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 8]}},
    ...     {"class_name": "Dense", "config": {"units": 4}}]}})
    36
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from autoinit.errors import ParameterBoundError
from autoinit.keras_facts import MODEL_CLASSES, is_hub_backbone, is_hub_layer
from autoinit.upload import hub_sizes
from autoinit.upload.config_values import (
    Shape,
    as_count,
    as_shape,
    as_shapes,
    clean_shape,
    dim_of,
    first_shape,
)
from autoinit.upload.hub_arguments import check_hub_arguments
from autoinit.upload.param_rules import PARAMETER_RULES, WEIGHTLESS_LAYERS
from autoinit.upload.shape_rules import SHAPE_RULES, broadcast, units_output, with_dim
from autoinit.upload.structure import format_path

__all__ = [
    "PARAMETER_RULES",
    "WEIGHTLESS_LAYERS",
    "WRAPPER_LAYERS",
    "ActivationElements",
    "activation_elements",
    "parameter_bound",
]

_Path = tuple[str | int, ...]

#: Deepest nesting of models in models (and wrappers) followed.
_MAX_NESTING = 32


# --- Walking models ------------------------------------------------------------


def parameter_bound(config: Mapping[str, Any], *, limit: int | None = None) -> int:
    """An upper bound on the parameters Keras builds for a model config.

    Args:
        config: a model config whose structure `check_model_structure`
            accepted (Keras 3, or tf.keras 2 entries without ``module``).
        limit: refuse as soon as the running total exceeds it.

    Raises:
        ModelConfigError: a weighted layer whose input width the config does
            not state (neither in ``build_config`` nor through the graph from
            the model's inputs), or a total above ``limit``; the message names
            the layer and its JSON path.

    A keras_hub backbone states arguments, not layers: its parameters are
    counted from them (`autoinit.upload.hub_sizes.backbone_parameters`),
    its embeddings first.
    """
    counter = _Bound(limit)
    if _is_backbone(config):
        config_args = _backbone_arguments(config)
        label = f"{config['class_name']} {config_args.get('name', '?')!r}"
        for part, count in hub_sizes.backbone_parameters(config["class_name"], config_args):
            counter.add(count, (), f"{label}'s {part}")
        return counter.total
    counter.model(config, None, (), 0)
    return counter.total


def _is_backbone(config: Mapping[str, Any]) -> bool:
    return is_hub_backbone(config.get("module"), config.get("class_name"))


def _backbone_arguments(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A backbone's arguments, checked (its sizes are read from them)."""
    arguments = config.get("config")
    check_hub_arguments(config["class_name"], arguments, ("config",), None)
    return arguments  # type: ignore[return-value]


@dataclass(frozen=True)
class ActivationElements:
    """Per-example float counts of a model's tensors, from its config alone.

    The same quantities as ``autoinit.probe.memory.ActivationSizes`` (which
    reads a built model, in bytes), for a process without Keras: the service
    refuses a job whose probe cannot fit before any worker builds it.
    """

    inputs: int
    outputs: int
    live_peak: int
    """Largest set of layer outputs alive at once, layers taken in config order."""
    total: int
    """All layer outputs together."""
    calls: int
    known: bool
    """False when some output shape could not be followed (counted as 0, so
    the sizes are then a lower bound)."""


def activation_elements(config: Mapping[str, Any]) -> ActivationElements:
    """Per-example tensor sizes of a model config, along the shapes that
    `parameter_bound` propagates (unknown dimensions count as 32, as the
    probe feeds them).

    Example:
        >>> activation_elements({"class_name": "Sequential", "config": {"layers": [
        ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 8]}},
        ...     {"class_name": "Dense", "config": {"units": 4}}]}}).live_peak
        12

    Raises:
        ModelConfigError: as `parameter_bound`.
    """
    if _is_backbone(config):
        sizes = hub_sizes.backbone_activations(config["class_name"], _backbone_arguments(config))
        return ActivationElements(**vars(sizes), known=True)
    counter = _Bound(None, _Liveness())
    counter.model(config, None, (), 0)
    return counter.live.summary()


def _elements(shape: Shape | None) -> int:
    """Floats per example; ``(None,)`` (a batch axis alone) holds none."""
    return 0 if shape is None or shape == (None,) else math.prod(32 if d is None else d for d in shape[1:])


class _Liveness:
    """Each tensor's size, the call that makes it and the last call that reads it."""

    def __init__(self) -> None:
        self.step = 0
        self.size: list[int] = []
        self.produced: list[int] = []
        self.last_use: dict[int, int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.known = True

    def tensor(self, shape: Shape | None) -> int:
        self.known = self.known and shape is not None
        self.size.append(_elements(shape))
        self.produced.append(self.step)
        return len(self.size) - 1

    def scratch(self, elements: int) -> None:
        """Tensors made and freed within the current call (a composite's inside)."""
        if elements:
            self.size.append(elements)
            self.produced.append(self.step)
            self.last_use[len(self.size) - 1] = self.step

    def use(self, tokens: list[int | None], step: int | None = None) -> None:
        for token in tokens:
            if token is not None:
                self.last_use[token] = self.step if step is None else step

    def repeat(self, step: int, token: int) -> None:
        """Run again the calls made since ``step`` (tensors from ``token`` on)."""
        steps, end = self.step - step, len(self.size)
        for old in range(token, end):
            self.size.append(self.size[old])
            self.produced.append(self.produced[old] + steps)
            if old in self.last_use:
                self.last_use[len(self.size) - 1] = self.last_use[old] + steps
        self.step += steps

    def summary(self) -> ActivationElements:
        self.use(self.outputs, self.step + 1)
        deltas: dict[int, int] = defaultdict(int)
        for token, elements in enumerate(self.size):
            deltas[self.produced[token]] += elements
            deltas[self.last_use.get(token, self.produced[token]) + 1] -= elements
        live = peak = 0
        for moment in sorted(deltas):
            live += deltas[moment]
            peak = max(peak, live)
        return ActivationElements(
            inputs=sum(self.size[t] for t in self.inputs),
            outputs=sum(self.size[t] for t in self.outputs),
            live_peak=peak,
            total=sum(self.size),
            calls=self.step,
            known=self.known,
        )


#: Layers whose parameters are those of the layer(s) they wrap.
WRAPPER_LAYERS = frozenset({"Bidirectional", "TimeDistributed", "RNN", "SpectralNormalization"})


class _Bound:
    def __init__(self, limit: int | None, live: _Liveness | None = None) -> None:
        self.limit = limit
        self.total = 0
        self.live = live or _Liveness()  # cheap: one list entry per tensor

    def add(self, params: int, path: _Path, label: str) -> None:
        self.total += params
        if self.limit is not None and self.total > self.limit:
            raise ParameterBoundError(
                f"The config asks for more than {self.limit:,} parameters (at least "
                f"{self.total:,} counted by {label} at {format_path(path)}); refusing it."
            )

    # Models -------------------------------------------------------------------

    def model(
        self, entry: Mapping[str, Any], inputs: list[Shape | None] | None, path: _Path, nesting: int
    ) -> list[Shape | None]:
        if nesting > _MAX_NESTING:
            raise ParameterBoundError(
                f"Models and wrappers are nested more than {_MAX_NESTING} deep at "
                f"{format_path(path)}; refusing it."
            )
        inner = entry.get("config") or {}
        layers = inner.get("layers") or []
        if entry.get("class_name") == "Sequential":
            return self.sequential(inner, layers, inputs, path, nesting)
        return self.functional(inner, layers, path, nesting)

    def sequential(
        self,
        inner: Mapping[str, Any],
        layers: list[Any],
        inputs: list[Shape | None] | None,
        path: _Path,
        nesting: int,
    ) -> list[Shape | None]:
        shape = as_shape(inner.get("build_input_shape"))
        if shape is None and inputs:
            shape = inputs[0]
        token: int | None = None
        for index, layer in enumerate(layers):
            layer_path = path + ("config", "layers", index)
            if layer.get("class_name") == "InputLayer":
                shape = _input_shape(layer) or shape
                continue
            if token is None:
                token = self._input(shape, nesting)
            given = [[shape] if shape is not None else []]
            outputs = self.layer(layer, given, layer_path, nesting)
            shape = outputs[0][0] if outputs and outputs[0] else None
            token = self._called(layer, [[token]], [[shape]], given)[0][0]
        if nesting == 0 and token is not None:
            self.live.outputs.append(token)
        return [shape]

    def _input(self, shape: Shape | None, nesting: int) -> int:
        if nesting:  # a nested model's input is its caller's tensor, counted there
            return self.live.tensor((None,))
        token = self.live.tensor(shape)
        self.live.inputs.append(token)
        return token

    def _called(
        self,
        entry: Mapping[str, Any],
        consumed: list[list[int | None]],
        outputs: list[list[Shape | None]],
        inputs: list[list[Shape]] | None = None,
    ) -> list[list[int]]:
        """Record a layer's calls (a nested model's own layers are recorded
        as its walk meets them): what each reads, its ``inputs`` shapes, and
        the tensors it makes."""
        made = []
        for call, (reads, shapes) in enumerate(zip(consumed, outputs)):
            if entry.get("class_name") not in MODEL_CLASSES:
                self.live.step += 1
            self.live.use(reads)
            if is_hub_layer(entry.get("module"), entry.get("class_name")):
                # The probe walks a keras_hub composite's own layers: their outputs live inside this call.
                given = inputs[call] if inputs and call < len(inputs) else []
                calls, elements = hub_sizes.composite_work(
                    entry["class_name"], entry.get("config") or {}, given
                )
                self.live.step += calls
                self.live.scratch(elements)
            made.append([self.live.tensor(shape) for shape in shapes])
        return made

    def functional(
        self, inner: Mapping[str, Any], layers: list[Any], path: _Path, nesting: int
    ) -> list[Shape | None]:
        tensors: dict[tuple[str, int, int], Shape | None] = {}
        tokens: dict[tuple[str, int, int], int] = {}
        for index, layer in enumerate(layers):
            name = layer.get("name")
            layer_path = path + ("config", "layers", index)
            if layer.get("class_name") == "InputLayer":
                tensors[(name, 0, 0)] = _input_shape(layer)
                tokens[(name, 0, 0)] = self._input(tensors[(name, 0, 0)], nesting)
                continue
            calls, consumed = [], []
            for node in layer.get("inbound_nodes") or []:
                refs = list(_tensor_refs(node))
                shapes = [tensors.get(ref) for ref in refs]
                # One unknown input makes the call's shapes unknown: a subset
                # could understate a merge (Concatenate sums widths).
                calls.append([] if None in shapes else shapes)
                consumed.append([tokens.get(ref) for ref in refs])
            outputs = self.layer(layer, calls or [[]], layer_path, nesting)
            made = self._called(layer, consumed or [[]], outputs, calls)
            for node_index, node_outputs in enumerate(outputs):
                for tensor_index, shape in enumerate(node_outputs):
                    tensors[(name, node_index, tensor_index)] = shape
                    tokens[(name, node_index, tensor_index)] = made[node_index][tensor_index]
        refs = list(_endpoint_refs(inner.get("output_layers")))
        if nesting == 0:
            self.live.outputs.extend(tokens[ref] for ref in refs if ref in tokens)
        return [tensors.get(ref) for ref in refs]

    # Layers -------------------------------------------------------------------

    def layer(
        self, entry: Mapping[str, Any], calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        """Count one layer's parameters (the most any call or its build_config
        can create); return its output shapes per call."""
        class_name = entry.get("class_name")
        config = entry.get("config") or {}
        label = f"layer {config.get('name', entry.get('name'))!r} ({class_name})"
        if class_name in MODEL_CLASSES:
            return self._nested_model(entry, calls, path, nesting)
        if class_name in WRAPPER_LAYERS:
            return self._wrapper(entry, class_name, calls, path, nesting)
        built = as_shapes((entry.get("build_config") or {}).get("input_shape")) or as_shapes(
            (entry.get("build_config") or {}).get("shapes_dict")
        )
        hub = is_hub_layer(entry.get("module"), class_name)
        if hub:  # its rules read its arguments (validate_model_config checked them already)
            check_hub_arguments(class_name, config, path + ("config",), (str(config.get("name")), class_name))
        rule = (hub_sizes.LAYER_PARAMETER_RULES if hub else PARAMETER_RULES).get(class_name)
        if rule is None and class_name not in WEIGHTLESS_LAYERS and not _is_op_node(entry):
            raise ParameterBoundError(
                f"AutoInit cannot bound the parameters of class {class_name!r} "
                f"({label} at {format_path(path)}); refusing it."
            )
        if rule is not None:
            candidates = [rule(config, shapes) for shapes in [built, *calls] if shapes]
            known = [c for c in candidates if c is not None]
            if not known and rule(config, []) is None:
                raise ParameterBoundError(
                    f"Cannot bound the parameters of {label} at {format_path(path)}: the "
                    "config states no input shape for it (no build_config, and none "
                    "reaches it from the model's inputs). A config without input shapes "
                    "cannot be checked; save the model after building it."
                )
            self.add(max(known, default=rule(config, []) or 0), path, label)
        shape_rule = (hub_sizes.LAYER_SHAPE_RULES if hub else SHAPE_RULES).get(
            class_name, broadcast if _is_op_node(entry) else None
        )
        return [
            [clean_shape(shape) for shape in shape_rule(config, shapes)] if shape_rule and shapes else [None]
            for shapes in calls
        ]

    def _nested_model(
        self, entry: Mapping[str, Any], calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        first = next((shapes for shapes in calls if shapes), None)
        step, token = self.live.step, len(self.live.size)
        outputs = self.model(entry, first, path, nesting + 1)
        for _ in calls[1:]:  # walked (parameters counted) once; each call runs its layers
            self.live.repeat(step, token)
        return [outputs for _ in calls]

    def _wrapper(
        self, entry: Mapping[str, Any], class_name: str, calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        config = entry.get("config") or {}
        built = as_shapes((entry.get("build_config") or {}).get("input_shape"))
        inputs = [shapes for shapes in [built, *calls] if shapes] or [[]]
        results: list[list[Shape | None]] = []
        if class_name == "TimeDistributed":
            inner = config.get("layer") or {}
            step_calls = [[(s[0], *s[2:]) for s in shapes if len(s) > 2] for shapes in inputs]
            steps = self._sublayer(inner, step_calls, path + ("config", "layer"), nesting)
            for shapes, outs in zip(inputs, steps):
                time = shapes[0][1] if shapes and len(shapes[0]) > 1 else None
                results.append([None if o is None else (o[0], time, *o[1:]) for o in outs])
        elif class_name == "Bidirectional":
            forward = config.get("layer") or {}
            backward = config.get("backward_layer") or forward
            outs = self._sublayer(forward, inputs, path + ("config", "layer"), nesting)
            self._sublayer(backward, inputs, path + ("config", "backward_layer"), nesting)
            merge = config.get("merge_mode", "concat")
            for out in outs:
                main = out[0] if out else None
                if main is not None and merge == "concat":
                    main = with_dim(main, -1, None if main[-1] is None else 2 * main[-1])
                results.append([main])
        elif class_name == "SpectralNormalization":
            before = self.total
            results = self._sublayer(config.get("layer"), inputs, path + ("config", "layer"), nesting)
            # Its power-iteration vector has one entry per output unit of the
            # wrapped kernel: no more than the wrapped layer's parameters.
            self.add(self.total - before, path, f"layer {config.get('name')!r} (SpectralNormalization)")
        else:  # RNN(cell)
            results = self._rnn_with_cells(config, inputs, path, nesting)
        return results[-len(calls) :] if calls else results

    def _sublayer(
        self, entry: Any, calls: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
            return [[None] for _ in calls]
        return self.layer(entry, calls, path, nesting + 1)

    def _rnn_with_cells(
        self, config: Mapping[str, Any], inputs: list[list[Shape]], path: _Path, nesting: int
    ) -> list[list[Shape | None]]:
        cell = config.get("cell") if isinstance(config.get("cell"), Mapping) else {}
        inner = cell.get("config") if isinstance(cell.get("config"), Mapping) else {}
        cells = inner.get("cells") if cell.get("class_name") == "StackedRNNCells" else None
        chain = (
            [(c, path + ("config", "cell", "config", "cells", i)) for i, c in enumerate(cells)]
            if isinstance(cells, list)
            else [(cell, path + ("config", "cell"))]
        )
        widths = [dim_of(first_shape(shapes), -1) for shapes in inputs]
        units = None
        for sub, sub_path in chain:  # each cell once, for every width it may see
            if not isinstance(sub, Mapping):
                continue
            self._sublayer(sub, [[(None, w)] if w is not None else [] for w in widths], sub_path, nesting)
            units = as_count((sub.get("config") or {}).get("units"))
            widths = [units] * len(widths)
        return [
            units_output(config, shape, units) if (shape := first_shape(shapes)) is not None else [None]
            for shapes in inputs
        ]


def _input_shape(layer: Mapping[str, Any]) -> Shape | None:
    config = layer.get("config") or {}
    shape = as_shape(config.get("batch_shape")) or as_shape(config.get("batch_input_shape"))
    if shape is None and isinstance(config.get("shape"), list):
        shape = as_shape([None, *config["shape"]])
    return shape


def _is_op_node(entry: Mapping[str, Any]) -> bool:
    module = entry.get("module")
    return isinstance(module, str) and module.startswith("keras.src.ops.")


def _tensor_refs(node: Any) -> Iterator[tuple[str, int, int]]:
    """Tensor references in an inbound node, in order: Keras 3
    ``__keras_tensor__`` dicts and tf.keras 2 ``[layer, node, tensor]`` lists."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            history = (
                (item.get("config") or {}).get("keras_history")
                if item.get("class_name") == "__keras_tensor__" and isinstance(item.get("config"), dict)
                else None
            )
            if _is_ref(history):
                yield tuple(history[:3])  # type: ignore[misc]
                continue
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            if _is_ref(item):
                yield tuple(item[:3])  # type: ignore[misc]
                continue
            stack.extend(reversed(item))


def _endpoint_refs(value: Any) -> Iterator[tuple[str, int, int]]:
    if _is_ref(value):
        yield tuple(value[:3])
        return
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
    for item in items:
        if _is_ref(item):
            yield tuple(item[:3])


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and as_count(value[1]) is not None
        and as_count(value[2]) is not None
    )
