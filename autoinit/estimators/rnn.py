"""Recurrent layers (SimpleRNN, GRU, LSTM, ConvLSTM) by seeded Monte Carlo simulation.

Paper, Appendix A, "Recurrent Layers": no closed form exists for the outgoing
moments of a recurrent layer; simulate it. The recurrent kernels keep a
standard initialization (sigmoid/tanh gates bound the hidden state), and the
simulation runs the layer's actual weights, as drawn, on Gaussian input
sequences with the incoming moments (per-feature offsets included).

Input sequence ``x_t = mean + d + u + r_t``: ``d`` the per-feature offsets
(the realised ones when ``x.offsets`` holds one value per feature, else a
draw of variance ``shared_var``), ``u`` a per-sequence, per-feature
component of variance ``example_shared_var``, ``r_t`` independent per step.
The output's offsets are the simulated per-unit means (a realisation, one
per unit: the gates make the output depend strongly on which offsets were
drawn, e.g. 0.03 to 0.12 in second moment over four draws of 16 offsets),
and with ``return_sequences`` its ``example_shared_var`` is the simulated
covariance of two distinct steps of one sequence (hidden states carry over
steps), averaged over step pairs.

ConvLSTM is an LSTM whose input and recurrent products are convolutions:
at one position the gates sum ``taps x channels`` inputs and ``taps x
filters`` hidden values of the neighbourhood. The simulation runs one
position with its kernels flattened to ``(taps * channels, 4 filters)``:
the neighbouring inputs are independent draws with the channel's moments,
the neighbouring hidden states are the hidden states of other simulated
sequences (positions taken as independent, like the inputs; the centre tap
reads the position's own state), and every tap is inside the map (borders,
where ``same`` padding reads zeros, are a small share of larger maps).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from autoinit.estimators.activations import Activation
from autoinit.moments import SignalMoments

__all__ = ["RecurrentSpec", "simulate_recurrent"]


@dataclass(frozen=True)
class RecurrentSpec:
    """What the simulation needs to know about a recurrent layer.

    Args:
        cell: "simple_rnn", "gru" or "lstm" (ConvLSTM: "lstm" with taps).
        units: hidden units.
        activation, recurrent_activation: the cell's activations.
        kernel, recurrent_kernel, bias: the weights (Keras layouts; ``bias``
            may be None; for GRU with ``reset_after`` it has shape (2, 3u)).
        timesteps: sequence length (None -> ``default_timesteps``).
        return_sequences: moments over all steps, else over the last step.
        reset_after: GRU variant.
        dropout, recurrent_dropout: training-mode dropout rates.
    """

    cell: str
    units: int
    activation: Activation
    recurrent_activation: Activation | None
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    timesteps: int | None
    return_sequences: bool = False
    reset_after: bool = True
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    input_taps: int = 1
    recurrent_taps: int = 1
    """ConvLSTM: kernel positions of the input and recurrent convolutions
    (``kernel`` then has ``input_taps * channels`` rows, tap-major, as a
    Keras kernel reshaped to ``(-1, 4 filters)``)."""


def _mask(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray | float:
    if rate <= 0.0:
        return 1.0
    return (rng.random(shape) >= rate) / (1.0 - rate)


def simulate_recurrent(
    x: SignalMoments,
    spec: RecurrentSpec,
    samples: int = 10_000,
    seed: int = 0,
    default_timesteps: int = 32,
) -> tuple[SignalMoments, SignalMoments | None]:
    """Simulate the layer; return moments of its output and (LSTM) cell state.

    ``samples`` is the number of simulated (sequence, unit) values per step;
    the batch is ``max(64, samples // units)`` sequences.
    """
    rng = np.random.default_rng(seed)
    x = x.per_channel()
    units = spec.units
    steps = int(spec.timesteps or default_timesteps)
    batch = max(64, int(samples) // max(units, 1))
    taps = max(int(spec.input_taps), 1)
    features = spec.kernel.shape[0] // taps
    offsets = np.tile(_input_offsets(x, features, rng), taps)
    example = np.tile(np.sqrt(x.example_shared_var) * rng.standard_normal((batch, features)), taps)
    features *= taps
    neighbours = _neighbour_orders(rng, batch, spec.recurrent_taps)
    fluct = np.sqrt(max(x.random_var - x.example_shared_var, 0.0))
    act, rec = spec.activation.fn, (spec.recurrent_activation.fn if spec.recurrent_activation else None)
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    in_mask = _mask(rng, (batch, features), spec.dropout)
    rec_mask = _mask(rng, (batch, units), spec.recurrent_dropout)
    bias = spec.bias
    outputs = []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            xt = (offsets + example + fluct * rng.standard_normal((batch, features))) * in_mask
            hm = h * rec_mask
            if neighbours is not None:
                hm = np.concatenate([hm[order] for order in neighbours], axis=1)
            if spec.cell == "simple_rnn":
                z = xt @ spec.kernel + hm @ spec.recurrent_kernel
                h = act(z + (bias if bias is not None else 0.0))
            elif spec.cell == "lstm":
                z = xt @ spec.kernel + hm @ spec.recurrent_kernel + (bias if bias is not None else 0.0)
                i, f, g, o = np.split(z, 4, axis=1)
                c = rec(f) * c + rec(i) * act(g)
                h = rec(o) * act(c)
            elif spec.cell == "gru":
                h = _gru_step(xt, h, hm, spec, act, rec)
            else:
                raise ValueError(f"Unknown recurrent cell {spec.cell!r}")
            if spec.return_sequences:
                outputs.append(h)
    values = np.stack(outputs) if spec.return_sequences else h[None]
    out = _moments(values)
    state = _moments(c[None]) if spec.cell == "lstm" else None
    return out, state


def _neighbour_orders(rng: np.random.Generator, batch: int, taps: int) -> list[np.ndarray] | None:
    """For a recurrent convolution of ``taps`` positions: which simulated
    sequence each tap reads (the centre tap its own, the others a random
    other one), or None for a dense recurrent kernel."""
    taps = int(taps)
    if taps <= 1:
        return None
    orders = [rng.permutation(batch) for _ in range(taps)]
    orders[taps // 2] = np.arange(batch)
    return orders


def _gru_step(xt, h, hm, spec: RecurrentSpec, act, rec) -> np.ndarray:
    u = spec.units
    bias = spec.bias
    if spec.reset_after:
        b_in, b_rec = (bias[0], bias[1]) if bias is not None else (0.0, 0.0)
        mx = xt @ spec.kernel + b_in
        mh = hm @ spec.recurrent_kernel + b_rec
        z = rec(mx[:, :u] + mh[:, :u])
        r = rec(mx[:, u : 2 * u] + mh[:, u : 2 * u])
        hh = act(mx[:, 2 * u :] + r * mh[:, 2 * u :])
    else:
        b = bias if bias is not None else np.zeros(3 * u)
        mx = xt @ spec.kernel + b
        rk = spec.recurrent_kernel
        z = rec(mx[:, :u] + hm @ rk[:, :u])
        r = rec(mx[:, u : 2 * u] + hm @ rk[:, u : 2 * u])
        hh = act(mx[:, 2 * u :] + (r * hm) @ rk[:, 2 * u :])
    return z * h + (1.0 - z) * hh


def _input_offsets(x: SignalMoments, features: int, rng: np.random.Generator) -> np.ndarray:
    """Each input feature's expected value: realised when known, else drawn."""
    if x.offsets is not None and x.offsets.shape == (features,):
        return np.asarray(x.offsets, dtype=np.float64)
    return x.mean + rng.standard_normal(features) * np.sqrt(x.shared_var)


def _moments(values: np.ndarray) -> SignalMoments:
    """Moments over (steps, batch, units): per-unit means as offsets, and the
    covariance of distinct steps of one sequence as ``example_shared_var``."""
    steps, batch, units = values.shape
    per_unit = values.reshape(-1, units).mean(axis=0)
    centred = values - per_unit
    out = SignalMoments.from_offsets(per_unit, centred.reshape(-1, units).var(axis=0))
    if steps < 2:
        return out
    # sum_{t != s} c_t c_s = (sum_t c_t)^2 - sum_t c_t^2, averaged over pairs.
    total = centred.sum(axis=0)
    pairs = (total * total - (centred * centred).sum(axis=0)).mean() / (steps * (steps - 1))
    return replace(out, example_shared_var=float(pairs))
