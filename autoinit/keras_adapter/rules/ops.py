"""Rules for the functional op nodes Keras writes into configs: ``x + y``,
``x * 0.5``, ``keras.ops.multiply(x, y)``, ``keras.ops.relu(x)`` on Keras
tensors become nodes whose class is a ``keras.src.ops`` operation. They are
registered under ``"<module>.<class>"`` (e.g. ``"keras.src.ops.numpy.Add"``;
``autoinit.keras_facts.OP_NODES`` lists them for the upload allow-list)
and mapped onto the merging estimators (two tensors), the affine estimator
(a tensor and a constant) and the activation estimators (one tensor).

Two functions of one tensor are one function of it, not two independent
tensors (``x * sigmoid(x)``, ``x + x = 2 x``; see the merging rules).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from autoinit.errors import EstimationError
from autoinit.estimators.activations import Activation, affine_of
from autoinit.estimators.preprocessing import estimate_affine
from autoinit.keras_adapter.context import LayerContext, elementwise_source
from autoinit.keras_adapter.rules import merging, rule
from autoinit.moments import SignalMoments

NUMPY = "keras.src.ops.numpy"
NN = "keras.src.ops.nn"

BINARY_OPS = ("Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum")
UNARY_NUMPY_OPS = ("Negative", "Tanh", "Abs", "Absolute", "Square", "Clip")
UNARY_NN_OPS = (
    "Relu", "Relu6", "Sigmoid", "Silu", "Gelu", "Elu", "Selu", "Celu", "LeakyRelu", "HardSigmoid",
    "HardSilu", "HardTanh", "HardShrink", "SoftShrink", "Softplus", "Softsign", "LogSigmoid",
    "SparsePlus", "Squareplus", "TanhShrink",
)  # fmt: skip


def _operands(ctx: LayerContext) -> list[Any]:
    return [*ctx.args, *ctx.kwargs.values()]


def _constant(value: Any, ctx: LayerContext) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise EstimationError(
            f"Op node '{ctx.call.name}' ({type(ctx.layer).__name__}): expected Keras tensors or numeric "
            f"constants as operands. Received: {value!r}"
        ) from error


def _affine(ctx: LayerContext, scale: Any, shift: Any) -> SignalMoments:
    y = estimate_affine(ctx.x, scale, shift, tuple(ctx.output_shape[1:]))
    a, b = np.asarray(scale, np.float64), np.asarray(shift, np.float64)
    if a.size == 1 and b.size == 1:  # still one elementwise function of the source
        base, inner = elementwise_source(ctx.x)
        y = replace(y, source=(base, affine_of(float(a), float(b), inner)))
    return y


def _elementwise(ctx: LayerContext, key: tuple, fn) -> SignalMoments:
    return ctx.activate(ctx.x, Activation(key, fn))


@rule(*(f"{NUMPY}.{name}" for name in BINARY_OPS))
def binary_op(ctx: LayerContext) -> SignalMoments:
    kind = type(ctx.layer).__name__
    operands = _operands(ctx)[:2]
    tensors = [v for v in operands if isinstance(v, SignalMoments)]
    if len(tensors) == 2:
        return _two_tensors(ctx, kind, *tensors)
    if len(tensors) != 1 or len(operands) != 2:
        raise EstimationError(
            f"Op node '{ctx.call.name}' ({kind}): expected two operands, at least one a Keras tensor. "
            f"Received: {operands!r}"
        )
    tensor_first = isinstance(operands[0], SignalMoments)
    c = _constant(operands[1] if tensor_first else operands[0], ctx)
    if kind == "Add":
        return _affine(ctx, 1.0, c)
    if kind == "Subtract":
        return _affine(ctx, 1.0, -c) if tensor_first else _affine(ctx, -1.0, c)
    if kind == "Multiply":
        return _affine(ctx, c, 0.0)
    if kind in ("Divide", "TrueDivide") and tensor_first:
        return _affine(ctx, 1.0 / c, 0.0)
    if kind in ("Maximum", "Minimum") and c.size == 1:
        bound = float(c)
        pick = np.maximum if kind == "Maximum" else np.minimum
        return _elementwise(ctx, (kind.lower(), bound), lambda v: pick(v, bound))
    raise EstimationError(
        f"Op node '{ctx.call.name}' ({kind}): expected a constant divisor or a scalar bound. "
        f"Received: operands {operands!r}"
    )


def _two_tensors(ctx: LayerContext, kind: str, a: SignalMoments, b: SignalMoments) -> SignalMoments:
    if kind == "Add":
        return merging.add(ctx)
    if kind == "Subtract":
        return merging.subtract(ctx)
    if kind == "Multiply":
        return merging.multiply(ctx)
    if kind == "Maximum":
        return merging.maximum(ctx)
    if kind == "Minimum":
        return merging.minimum(ctx)
    raise EstimationError(
        f"Op node '{ctx.call.name}' ({kind}): the quotient of two tensors has no estimator; expected a "
        "constant divisor. Received: two Keras tensors"
    )


@rule(f"{NUMPY}.Negative")
def negative(ctx: LayerContext) -> SignalMoments:
    return _affine(ctx, -1.0, 0.0)


@rule(
    *(f"{NUMPY}.{name}" for name in UNARY_NUMPY_OPS if name != "Negative"),
    *(f"{NN}.{name}" for name in UNARY_NN_OPS),
)
def unary_op(ctx: LayerContext) -> SignalMoments:
    """An elementwise op: the op itself, evaluated on the quadrature nodes,
    is the activation (its arguments, e.g. ``approximate`` or ``negative_slope``,
    come with it)."""
    return ctx.activate(ctx.x, ctx.layer)
