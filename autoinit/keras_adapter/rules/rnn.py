"""Rules for SimpleRNN, GRU, LSTM, ConvLSTM1D/2D/3D and Bidirectional.

The input kernel is a dense projection of the layer's input and gets
AutoInit's dense scale; the recurrent kernel and bias keep the layer's own
initializers (paper: recurrent layers keep a standard scheme), redrawn with
AutoInit's seed. The outgoing moments come from a seeded simulation of the
layer with its actual weights.
"""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import numpy as np

from autoinit.estimators.convolutional import average_taps
from autoinit.estimators.core import dense_weight_variance
from autoinit.estimators.merging import (
    estimate_add,
    estimate_average,
    estimate_concatenate,
    estimate_multiply,
)
from autoinit.estimators.rnn import RecurrentSpec, simulate_recurrent
from autoinit.keras_adapter.activations import resolve_activation
from autoinit.keras_adapter.context import LayerContext, spatial_dims
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
        writer.redraw(
            cell, cell.recurrent_kernel, cell.recurrent_initializer, ctx.seed_place(f"{prefix}recurrent")
        )
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


@rule("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
def conv_lstm(ctx: LayerContext) -> list[SignalMoments]:
    """LSTM with convolutions: the input kernel gets the convolution's scale
    (fan-in: in-bounds taps x channels), the recurrent kernel its own
    initializer, and the outgoing moments a simulation of one position
    (``estimators.rnn``)."""
    layer, cell = ctx.layer, ctx.layer.cell
    rank = len(cell.kernel_size)
    # Each time step is one convolution of a (batch, *spatial, channels) frame.
    frame = (None, *ctx.input_shape[2:])
    spatial = spatial_dims(frame, cell.data_format, rank)
    taps = average_taps(spatial, cell.kernel_size, cell.strides, cell.padding, cell.dilation_rate)
    channels = int(cell.kernel.shape[-2])
    place = "kernel"
    first = ctx.first_call(place)
    variance = ctx.weight_variance(place, dense_weight_variance(ctx.x, taps * channels, ctx.target))
    writer = ctx.session.writer
    if first and writer is not None:
        writer.write(cell, cell.kernel, variance, ctx.seed_place(place), "kernel_initializer")
        writer.redraw(cell, cell.recurrent_kernel, cell.recurrent_initializer, ctx.seed_place("recurrent"))
    filters = int(cell.filters)
    # Border taps read zeros: the simulation's full neighbourhoods are
    # weighted down to the average number of in-bounds taps (its variance).
    size = math.prod(cell.kernel_size)
    out_spatial = spatial_dims(
        (None, *ctx.output_shape[2:]) if layer.return_sequences else ctx.output_shape, cell.data_format, rank
    )
    recurrent_taps = average_taps(out_spatial, cell.kernel_size, (1,) * rank, "same", (1,) * rank)
    spec = RecurrentSpec(
        cell="lstm",
        units=filters,
        activation=resolve_activation(cell.activation),
        recurrent_activation=resolve_activation(cell.recurrent_activation),
        kernel=_numpy(cell.kernel).reshape(-1, 4 * filters) * math.sqrt(taps / size),
        recurrent_kernel=_numpy(cell.recurrent_kernel).reshape(-1, 4 * filters)
        * math.sqrt(recurrent_taps / size),
        bias=_numpy(getattr(cell, "bias", None)),
        timesteps=ctx.input_shape[1],
        return_sequences=bool(layer.return_sequences),
        dropout=float(getattr(cell, "dropout", 0.0)),
        recurrent_dropout=float(getattr(cell, "recurrent_dropout", 0.0)),
        input_taps=math.prod(cell.kernel_size),
        recurrent_taps=math.prod(cell.kernel_size),
    )
    out, cell_state = simulate_recurrent(ctx.x, spec, samples=ctx.session.recurrent_monte_carlo_samples)
    return [out, out, cell_state] if layer.return_state else [out]


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
