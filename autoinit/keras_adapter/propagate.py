"""Algorithm 1: walk the graph, estimate every layer, scale every weighted one."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import keras
import numpy as np

from autoinit.errors import EstimationError, UnsupportedLayerWarning
from autoinit.estimators.base import LayerOutputDistributionEstimator
from autoinit.keras_adapter.composite import closed_shape, open_length
from autoinit.keras_adapter.context import LayerContext, LayerNote, Session
from autoinit.keras_adapter.graph import (
    LayerCall,
    embedding_vocabularies,
    functional_of,
    is_padding_mask,
    model_inputs,
    run_graph,
)
from autoinit.keras_adapter.rules import KEEPS_WEIGHTS_AXIS, rule_for
from autoinit.moments import COVARIANCE_ELEMENTS, SignalMoments

__all__ = ["propagate"]


def _custom_estimator(layer: Any, custom: Mapping[type, type]) -> type | None:
    for cls in type(layer).__mro__:
        if cls in custom:
            return custom[cls]
    return None


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def propagate(
    model: keras.Model,
    session: Session,
    input_moments: Sequence[SignalMoments],
    custom_estimators: Mapping[type, type] | None = None,
) -> list[dict]:
    """Run AutoInit's pass over ``model``; return one record per layer call.

    With ``session.writer`` set, weighted layers get their weights drawn.
    """
    custom = dict(custom_estimators or {})
    records: list[dict] = []
    inputs = model_inputs(model)
    if len(input_moments) != len(inputs):
        raise EstimationError(
            f"Model '{model.name}' has {len(inputs)} inputs; expected as many input "
            f"moments. Received: {len(input_moments)}"
        )
    if session.writer is not None:
        input_moments = [
            _independent_elements(m, shape, dtype) for (_, shape, dtype), m in zip(inputs, input_moments)
        ]
    index_inputs = embedding_vocabularies(model)
    for (name, shape, dtype), moments in zip(inputs, input_moments):
        record = _record(name, "InputLayer", shape, moments, False, LayerNote(estimator="input"))
        if "float" not in dtype or name in index_inputs:  # token ids, a padding mask: not a signal
            record.update(mean=None, var=None, shared_var=None, signal=False)
        records.append(record)

    def visit(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> Any:
        if not call.is_signal:  # mask or index arithmetic: no moments, no record
            return _evaluated(call, args, kwargs, flat)
        layer = call.layer
        signals = [i for i, m in enumerate(flat) if isinstance(m, SignalMoments)]
        if len(signals) != len(flat):  # masks among the inputs: shapes follow the signals
            call = replace(call, input_shapes=tuple(call.input_shapes[i] for i in signals))
        ctx = LayerContext(call, [flat[i] for i in signals], args, kwargs, session)
        estimator_cls = _custom_estimator(layer, custom)
        layer_rule = rule_for(layer)
        if estimator_cls is not None:
            ctx.note.estimator = "custom"
            outputs = _run_custom(estimator_cls, ctx)
        elif layer_rule is not None:
            try:
                outputs = layer_rule(ctx)
            except EstimationError:
                raise
            except (AttributeError, TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as error:
                raise EstimationError(
                    f"Could not estimate layer '{layer.name}' ({type(layer).__name__}): {error}"
                ) from error
        else:
            warnings.warn(
                f"No LayerOutputDistributionEstimator found for layer '{layer.name}' "
                f"({type(layer).__name__}). Using pass-through (output mean and variance "
                "equal the first input's). Pass custom_distribution_estimators="
                f"{{{type(layer).__name__}: YourEstimator}} to model it.",
                UnsupportedLayerWarning,
                stacklevel=2,
            )
            ctx.note.estimator = "pass-through"
            outputs = ctx.inputs[0] if ctx.inputs else SignalMoments(0.0, 1.0)
        outputs = outputs if isinstance(outputs, list) else [outputs] * max(len(call.output_shapes), 1)
        if layer_rule not in KEEPS_WEIGHTS_AXIS or estimator_cls is not None:
            outputs = [_unmarked(m) for m in outputs]
        has_weights = bool(getattr(layer, "weights", None))
        records.append(
            _record(
                call.name,
                type(layer).__name__,
                call.output_shapes[0] if call.output_shapes else (),
                outputs[0],
                has_weights,
                ctx.note,
                call,
            )
        )
        return outputs

    functional_of(model)  # clear error for unbuilt/subclassed models
    with open_length(model):
        values = [
            _padding_mask(shape) if is_padding_mask(name, dtype) else m
            for (name, shape, dtype), m in zip(inputs, input_moments)
        ]
        run_graph(model, values, visit)
    return records


def _unmarked(moments: Any) -> Any:
    """``moments`` without ``weights_overlap`` (see ``rules.KEEPS_WEIGHTS_AXIS``)."""
    if isinstance(moments, SignalMoments) and moments.weights_overlap is not None:
        return replace(moments, weights_overlap=None)
    return moments


def _padding_mask(shape: tuple) -> np.ndarray:
    return np.ones(closed_shape(shape, 1), dtype="int32")


def _evaluated(call: LayerCall, args: tuple, kwargs: dict, flat: list) -> list:
    """A mask computation (integer or boolean outputs) evaluated on one
    example when its inputs are known arrays (a padding mask of ones, a
    causal mask built from shapes), so that rules downstream (a masked
    softmax) see the real mask; ``None`` values otherwise."""
    unknown = [None] * max(len(call.output_shapes), 1)
    if not all(isinstance(v, np.ndarray) for v in flat):
        return unknown
    try:
        outputs = call.layer(*args, **kwargs)
        return [np.asarray(keras.ops.convert_to_numpy(y)) for y in keras.tree.flatten(outputs)]
    except Exception:  # noqa: BLE001 - an op that cannot run on these arrays: mask unknown
        return unknown


def _independent_elements(moments: SignalMoments, shape: tuple, dtype: Any) -> SignalMoments:
    """A small float input's moments with their covariance (independent
    elements: ``var * I``), so that layers downstream of drawn weights can
    carry theirs (``SignalMoments.covariance``); other inputs unchanged."""
    example = tuple(shape[1:])
    if moments.offsets is not None or moments.shared_var > 0.0 or not example or None in example:
        return moments
    if "float" not in str(dtype) or math.prod(example) > COVARIANCE_ELEMENTS:
        return moments
    if not (math.isfinite(moments.mean) and math.isfinite(moments.var)):
        return moments
    offsets = np.full(example, moments.mean)
    return SignalMoments.from_offsets(offsets, moments.var).with_covariance(
        moments.var * np.eye(offsets.size)
    )


def _run_custom(estimator_cls: type, ctx: LayerContext) -> SignalMoments:
    if not (isinstance(estimator_cls, type) and issubclass(estimator_cls, LayerOutputDistributionEstimator)):
        raise EstimationError(
            "custom_distribution_estimators values should be LayerOutputDistributionEstimator "
            f"subclasses. Received: {estimator_cls!r} for layer '{ctx.layer.name}' ({type(ctx.layer).__name__})"
        )
    estimator = estimator_cls(
        ctx.layer, ctx.call.input_shapes, ctx.call.output_shapes, ctx.session.signal_variance
    )
    try:
        result = estimator.estimate_moments(ctx.inputs)
    except NotImplementedError:
        raise
    except Exception as error:  # user code: report which layer failed
        raise EstimationError(
            f"Custom estimator {estimator_cls.__name__} failed on layer '{ctx.layer.name}' "
            f"({type(ctx.layer).__name__}): {error}"
        ) from error
    if not isinstance(result, SignalMoments):
        raise EstimationError(
            f"{estimator_cls.__name__}.estimate should return (mean, var). Received: {result!r}"
        )
    return result


def _record(
    name: str,
    class_name: str,
    shape: tuple,
    moments: SignalMoments,
    has_weights: bool,
    note: LayerNote,
    call: LayerCall | None = None,
) -> dict:
    variances = {k: _json_float(v) for k, v in note.weight_variances.items()}
    record = {
        "name": name,
        "class_name": class_name,
        "output_shape": list(shape),
        "mean": _json_float(moments.mean),
        "var": _json_float(moments.var),
        "shared_var": _json_float(moments.shared_var),
        "has_weights": has_weights,
        "estimator": note.estimator if note.estimator != "input" else "builtin",
        "scale": next(iter(variances.values()), None),
        "weight_variances": variances,
        "target": note.target,
    }
    if getattr(note, "shared_with", None):
        record["shared_call"] = note.shared_with  # weights set by that call; no target here
    if note.pre_activation is not None:
        record["pre_activation"] = {
            "mean": _json_float(note.pre_activation.mean),
            "var": _json_float(note.pre_activation.var),
        }
    if call is not None:
        record["layer_name"] = call.layer.name
        record["call_index"] = call.call_index
    return record
