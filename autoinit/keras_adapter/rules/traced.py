"""Rules for the ``keras.ops`` operations met inside a composite layer's
trace (``keras_adapter.composite``): a ``TransformerEncoder``'s residual
adds are op nodes, and so are its reshapes, its mask arithmetic and, in
attention written with ``ops.einsum``, the score and mixing products.

Listed in ``autoinit.keras_facts.TRACED_OP_NODES``. They are not accepted in
uploaded configs (the upload's parameter bound does not follow their shapes);
the ops a config may hold are ``ops.OP_NODES``'s.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np

from autoinit.errors import EstimationError
from autoinit.estimators.activations import estimate_softmax
from autoinit.estimators.attention import attend, causal_rows, masked_concentration, row_overlap
from autoinit.keras_adapter.composite import open_dim
from autoinit.keras_adapter.context import LayerContext, kept_keys, without_offsets
from autoinit.keras_adapter.rules import keeps_weights_axis, rule
from autoinit.moments import SignalMoments

CORE = "keras.src.ops.core"
NUMPY = "keras.src.ops.numpy"
NN = "keras.src.ops.nn"
MATH = "keras.src.ops.math"

# Operations that move, copy or select elements (and casts): the moments of
# the elements are unchanged. Mask arithmetic (on the padding mask) also
# passes through here; its values never reach a weighted layer's statistics.
MOVING_OPS = {
    CORE: ("Cast", "Slice", "StopGradient", "Unstack"),
    NUMPY: (
        "ExpandDims", "Squeeze", "Reshape", "Transpose", "GetItem", "BroadcastTo", "Tile",
        "Repeat", "Split", "Stack", "Concatenate", "Take", "Tril", "Triu", "MoveAxis", "SwapAxes",
    ),
}  # fmt: skip
PRODUCT_OPS = {NUMPY: ("Einsum", "Matmul")}
# ``Where``, ``ZerosLike``, ``OnesLike``: their own rules below.
SOFTMAX_OPS = {NN: ("Softmax",)}
# ``DotProductAttention``: its own rule below.


def _keys(table: dict[str, tuple[str, ...]]) -> list[str]:
    return [f"{module}.{name}" for module, names in table.items() for name in names]


_KEEP_EVERY_AXIS = ("Cast", "StopGradient")
"""Moving ops that change no element's place: attention weights stay rows
summing to one through them (``SignalMoments.weights_overlap`` kept)."""


@keeps_weights_axis
@rule(*_keys(MOVING_OPS))
def moving(ctx: LayerContext) -> SignalMoments:
    """Elements moved, copied or selected: the same moments (per-position
    maps forgotten: the op may move the channel axis; attention weights
    moved are no longer rows along the last axis, but for a cast). Of a
    constant (a mask or position table a block builds from shapes, e.g.
    Falcon's ALiBi slopes): the constant's values."""
    if not ctx.inputs:
        if ctx.args and not isinstance(ctx.args[0], SignalMoments):
            return _as_moments(ctx.args[0], ctx)
        raise EstimationError(f"Op node '{ctx.call.name}' ({type(ctx.layer).__name__}) has no tensor input.")
    y = without_offsets(ctx.x)
    if y.weights_overlap is not None and type(ctx.layer).__name__ not in _KEEP_EVERY_AXIS:
        y = replace(y, weights_overlap=None)
    return y


def _operands(ctx: LayerContext) -> list[tuple[SignalMoments, tuple]]:
    """A product's operands in order, each ``(moments, shape)``: a tensor's,
    or a constant's values (a block's own weight used in its ``call``, e.g.
    XLNet's relative-position biases)."""
    shapes = iter(ctx.call.input_shapes)
    operands = []
    for value in ctx.args:
        if isinstance(value, SignalMoments):
            operands.append((value, tuple(next(shapes, ()))))
        elif value is not None and not isinstance(value, str):
            operands.append((_as_moments(value, ctx), tuple(np.shape(value))))
    return operands


def _contracted(ctx: LayerContext, shapes: list[tuple]) -> int:
    """How many products each output element sums: for ``einsum``, the
    sizes of the letters both operands carry and the output drops; for
    ``matmul``, the first operand's last axis. An open size (a sequence
    length that shape inference lost) is ``open_dim()``, the length the walk
    and the probes use for open dimensions."""
    if type(ctx.layer).__name__ == "Matmul":
        return int(shapes[0][-1] or open_dim())
    equation = str(getattr(ctx.layer, "subscripts", "")).replace(" ", "")
    match = re.match(r"^([\w.]+),([\w.]+)->([\w.]*)$", equation)
    if not match:
        raise EstimationError(
            f"Op node '{ctx.call.name}' (Einsum): expected two operands 'a,b->out'. Received: {equation!r}"
        )
    left, right, out = match.groups()
    size = 1
    for i, letter in enumerate(left):
        if letter in right and letter not in out and letter != "." and i < len(shapes[0]):
            size *= int(shapes[0][i] or open_dim())
    return size


@rule(*_keys(PRODUCT_OPS))
def product(ctx: LayerContext) -> SignalMoments:
    """``y = sum_k a_k b_k`` over ``K`` contracted elements, the operands
    independent (a constant operand, one of a block's own weights, by the
    moments of its values): ``E[y] = K m_a m_b`` and ``Var y = K (E[a^2] E[b^2] - m_a^2 m_b^2)``.
    For attention's mixing ``sum_k p_k v_k`` (probabilities ``p``, values
    ``v`` independent of them) the parts of ``v`` constant over its tokens
    pass whole and the rest is scaled by ``E[sum p_k^2]``: the weights'
    ``weights_overlap`` marks them (``estimators.attention.attend``)."""
    operands = _operands(ctx)
    if len(operands) != 2 or not ctx.inputs:
        raise EstimationError(
            f"Op node '{ctx.call.name}' ({type(ctx.layer).__name__}): expected two operands, one of them "
            f"a tensor. Received: {len(ctx.inputs)} tensors and {len(operands) - len(ctx.inputs)} constants"
        )
    a, b = (without_offsets(m) for m, _ in operands)
    k = _contracted(ctx, [shape for _, shape in operands])
    for i, (weights, values) in enumerate(((a, b), (b, a))):
        shared = _weighted_average(ctx, i) if weights.weights_overlap is not None else None
        if shared is not None:
            # Rows of weights summing to one average the values: their parts constant
            # over the averaged axis pass whole; rows share values only in attention.
            overlap = weights.weights_overlap if shared else 0.0
            return attend(values, k * weights.second_moment, k, overlap=overlap)
    second = a.second_moment * b.second_moment - (a.mean * b.mean) ** 2
    return SignalMoments(k * a.mean * b.mean, max(k * second, 0.0))


def _weighted_average(ctx: LayerContext, operand: int) -> bool | None:
    """Whether the product averages the other operand with the rows of its
    ``operand``-th one: it sums over that operand's last axis alone. True
    when every row reads the same values (attention: ``bhqk,bkhd``,
    ``matmul``), False when the values differ per row (a mixture of
    experts' ``btk,btkd``: the row axis is the values' too), None when the
    product is no such average."""
    if type(ctx.layer).__name__ == "Matmul":
        return True if operand == 0 else None
    equation = str(getattr(ctx.layer, "subscripts", "")).replace(" ", "")
    match = re.match(r"^([\w.]+),([\w.]+)->([\w.]*)$", equation)
    if not match:
        return None
    operands, out = match.groups()[:2], match.group(3)
    weights, values = operands[operand], operands[1 - operand]
    contracted = [c for c in set(weights) & set(values) if c not in out and c != "."]
    if contracted != [weights[-1]] or len(weights) < 2:
        return None
    return weights[-2] not in values


@keeps_weights_axis
@rule(*_keys(SOFTMAX_OPS))
def softmax(ctx: LayerContext) -> SignalMoments:
    """``keras.ops.softmax``; over the last axis alone its rows are attention
    weights (``weights_overlap``: ``1 / n``, no mask known here: a mask
    applied to the scores beforehand, by ``where``, is not seen)."""
    axis = getattr(ctx.layer, "axis", -1)
    axes = axis if isinstance(axis, (list, tuple)) else (axis,)
    size = 1
    for a in axes:
        size *= int(ctx.output_shape[a] or open_dim())
    y = estimate_softmax(without_offsets(ctx.x), size, samples=ctx.session.monte_carlo_samples)
    rank = len(ctx.output_shape)
    last = [a % rank for a in axes] == [rank - 1]
    return replace(y, weights_overlap=1.0 / size) if last else y


@rule(f"{NUMPY}.ZerosLike", f"{NUMPY}.OnesLike")
def constant_like(ctx: LayerContext) -> SignalMoments:
    return SignalMoments(1.0 if type(ctx.layer).__name__ == "OnesLike" else 0.0, 0.0)


@rule(f"{NUMPY}.Where")
def where(ctx: LayerContext) -> SignalMoments:
    """``where(condition, a, b)``: with a known condition (a mask the walk
    evaluated) the mixture of ``a`` and ``b`` in the proportion it selects;
    with an unknown one, ``b`` (the guards met in attention, e.g. wiping
    rows with no token to attend, select ``a`` only in rare cases)."""
    condition, a, b = (list(ctx.args) + [ctx.kwargs.get(k) for k in ("condition", "x1", "x2")])[:3]
    a, b = (v if isinstance(v, SignalMoments) else _as_moments(v, ctx) for v in (a, b))
    if not isinstance(condition, np.ndarray):
        return b
    chosen = float(np.mean(condition.astype(bool)))
    mean = chosen * a.mean + (1 - chosen) * b.mean
    second = chosen * a.second_moment + (1 - chosen) * b.second_moment
    return SignalMoments(mean, max(second - mean * mean, 0.0))


def _as_moments(value: object, ctx: LayerContext) -> SignalMoments:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise EstimationError(
            f"Op node '{ctx.call.name}' ({type(ctx.layer).__name__}): expected tensors or numbers. "
            f"Received: {value!r}"
        ) from error
    return SignalMoments(float(array.mean()), float(array.var()))


@rule(f"{NN}.DotProductAttention")
def dot_product_attention(ctx: LayerContext) -> SignalMoments:
    """``softmax(scale q.k) v`` over ``S`` keys (inputs ``(B, T, H, D)``):
    scores of variance ``D E[q^2] E[k^2] scale^2`` (``scale`` 1/sqrt(D) by
    default), then ``estimators.attention.attend`` with the weights'
    concentration ``E[sum_t A_t^2]`` and two rows' overlap (averaged over
    the keys each row keeps: causal, or under a known mask)."""
    named = dict(zip(("query", "key", "value"), ctx.args)) | ctx.kwargs
    q, k, v = (without_offsets(named[n]) for n in ("query", "key", "value"))
    shapes = dict(zip(("query", "key", "value"), ctx.call.input_shapes))
    depth = int(shapes["query"][-1] or open_dim())
    keys = int(shapes["key"][1] or open_dim())
    scale = named.get("scale")
    scale = 1.0 / math.sqrt(depth) if scale is None else float(scale)
    score_var = depth * q.second_moment * k.second_moment * scale * scale
    queries = int(shapes["query"][1] or open_dim())
    kept = kept_keys(named.get("mask"), queries, keys)
    if getattr(ctx.layer, "is_causal", False):  # Keras applies both, as one mask
        kept = causal_rows(queries, keys) if kept is None else kept & causal_rows(queries, keys)
    concentration = masked_concentration(kept, keys, score_var, ctx.session.monte_carlo_samples)
    return attend(v, concentration, keys, overlap=row_overlap(kept, keys))
