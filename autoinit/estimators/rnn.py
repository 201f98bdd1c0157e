"""Recurrent layers (SimpleRNN, GRU, LSTM) by seeded Monte Carlo simulation.

Paper, Appendix A, "Recurrent Layers": no closed form exists for the outgoing
moments of a recurrent layer; simulate it. The recurrent kernels keep a
standard initialization (sigmoid/tanh gates bound the hidden state), and the
simulation runs the layer's actual weights, as drawn, on Gaussian input
sequences with the incoming moments (per-feature offsets included).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoinit.estimators.activations import Activation
from autoinit.moments import SignalMoments

__all__ = ["RecurrentSpec", "simulate_recurrent"]


@dataclass(frozen=True)
class RecurrentSpec:
    """What the simulation needs to know about a recurrent layer.

    Args:
        cell: "simple_rnn", "gru" or "lstm".
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
    units = spec.units
    steps = int(spec.timesteps or default_timesteps)
    batch = max(64, int(samples) // max(units, 1))
    features = spec.kernel.shape[0]
    offsets = rng.standard_normal(features) * np.sqrt(x.shared_var)
    fluct = np.sqrt(x.fluctuating_var)
    act, rec = spec.activation.fn, (spec.recurrent_activation.fn if spec.recurrent_activation else None)
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    in_mask = _mask(rng, (batch, features), spec.dropout)
    rec_mask = _mask(rng, (batch, units), spec.recurrent_dropout)
    bias = spec.bias
    outputs = []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            xt = (x.mean + offsets + fluct * rng.standard_normal((batch, features))) * in_mask
            hm = h * rec_mask
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


def _moments(values: np.ndarray) -> SignalMoments:
    """Moments over (steps, batch, units); shared = spread of per-unit means."""
    mean = float(values.mean())
    var = float(values.var())
    per_unit = values.reshape(-1, values.shape[-1]).mean(axis=0)
    return SignalMoments(mean, var, float(per_unit.var()))
