"""Rules for SimpleRNN, GRU, LSTM and Bidirectional.

The input kernel is a dense projection of the layer's input and gets
AutoInit's dense scale; the recurrent kernel and bias keep the layer's own
initializers (paper: recurrent layers keep a standard scheme), redrawn with
AutoInit's seed. The outgoing moments come from a seeded simulation of the
layer with its actual weights.
"""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np

from autoinit.estimators.core import dense_weight_variance
from autoinit.estimators.merging import estimate_add, estimate_average, estimate_concatenate, estimate_multiply
from autoinit.estimators.rnn import RecurrentSpec, simulate_recurrent
from autoinit.keras_adapter.activations import resolve_activation
from autoinit.keras_adapter.context import LayerContext
from autoinit.keras_adapter.rules import rule
from autoinit.moments import SignalMoments

_CELLS = {"SimpleRNNCell": "simple_rnn", "GRUCell": "gru", "LSTMCell": "lstm"}


def _numpy(variable) -> np.ndarray | None:
    return None if variable is None else np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


def _recurrent(ctx: LayerContext, rnn, prefix: str) -> list[SignalMoments]:
    cell = rnn.cell
    x = ctx.x
    fan_in = int(cell.kernel.shape[0])
    place = prefix + "kernel"
    first = ctx.first_call(place)
    variance = ctx.weight_variance(place, dense_weight_variance(x, fan_in, ctx.target))
    writer = ctx.session.writer
    if first and writer is not None:
        writer.write(cell, cell.kernel, variance, ctx.seed_place(place), "kernel_initializer")
        writer.redraw(cell, cell.recurrent_kernel, cell.recurrent_initializer, ctx.seed_place(f"{prefix}recurrent"))
    recurrent_activation = getattr(cell, "recurrent_activation", None)
    spec = RecurrentSpec(
        cell=_CELLS[type(cell).__name__],
        units=int(cell.units),
        activation=resolve_activation(cell.activation),
        recurrent_activation=resolve_activation(recurrent_activation) if recurrent_activation else None,
        kernel=_numpy(cell.kernel),
        recurrent_kernel=_numpy(cell.recurrent_kernel),
        bias=_numpy(getattr(cell, "bias", None)),
        timesteps=ctx.input_shape[1],
        return_sequences=bool(rnn.return_sequences),
        reset_after=bool(getattr(cell, "reset_after", True)),
        dropout=float(getattr(cell, "dropout", 0.0)),
        recurrent_dropout=float(getattr(cell, "recurrent_dropout", 0.0)),
    )
    out, cell_state = simulate_recurrent(x, spec, samples=ctx.session.recurrent_monte_carlo_samples)
    outputs = [out]
    if rnn.return_state:
        outputs.append(out)
        if cell_state is not None:
            outputs.append(cell_state)
    return outputs


def _concatenate_channels(pair: list[SignalMoments]) -> SignalMoments:
    """Concatenation along the unit axis: per-unit offsets are joined when
    both are known; the per-example parts average (equal unit counts)."""
    a, b = pair
    example = 0.5 * (a.example_shared_var + b.example_shared_var)
    if a.offsets is not None and b.offsets is not None and a.offsets.ndim == b.offsets.ndim == 1:
        random = np.concatenate([np.broadcast_to(m.random_map(), m.offsets.shape) for m in pair])
        joined = SignalMoments.from_offsets(np.concatenate([a.offsets, b.offsets]), random)
    else:
        joined = estimate_concatenate(pair, [1, 1])
    return replace(joined, example_shared_var=example)


@rule("SimpleRNN", "GRU", "LSTM")
def recurrent(ctx: LayerContext) -> list[SignalMoments]:
    return _recurrent(ctx, ctx.layer, "")


@rule("Bidirectional")
def bidirectional(ctx: LayerContext) -> list[SignalMoments]:
    layer = ctx.layer
    forward = _recurrent(ctx, layer.forward_layer, "forward_")
    backward = _recurrent(ctx, layer.backward_layer, "backward_")
    mode = layer.merge_mode
    if mode is None:
        return forward[:1] + backward[:1]
    pair = [forward[0], backward[0]]
    merged = {
        "concat": lambda: _concatenate_channels(pair),
        "sum": lambda: estimate_add(pair),
        "ave": lambda: estimate_average(pair),
        "mul": lambda: estimate_multiply(pair),
    }[mode]()
    states = forward[1:] + backward[1:] if layer.return_state else []
    return [merged, *states]
