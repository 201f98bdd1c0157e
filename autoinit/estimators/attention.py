"""MultiHeadAttention: AutoInit for all four projections.

Query, key and value are EinsumDense projections: each gets the dense scale
(``Var(W) = 1 / (fan_in E[x^2])``) so that q, k, v have unit variance. Then
``score = q . k / sqrt(key_dim)`` has variance ``Var(q) Var(k) = 1``, and each
head's output ``o_i = sum_t A_it v_t`` with ``A_i = softmax(score_i)`` over
``T`` keys. Split a value channel as ``v_t = s + u + r_t``: ``s`` the shared
per-channel offset (variance ``s_v``), ``u`` constant over the tokens of one
example (variance ``e_v``, ``SignalMoments.example_shared_var``) and ``r_t``
independent per token (variance ``f_v - e_v``, ``f_v`` the fluctuating
variance). With ``sum_t A_it = 1`` and the weights independent of the values:

    E[o^2] - mean^2 = s_v + e_v + (f_v - e_v) E[sum_t A_t^2] / (1 - dropout),

(``s`` and ``u`` pass whole; ``E[sum_t A_t^2]`` is a seeded Monte Carlo
estimate, no closed form for finite ``T``; attention dropout masks have mean
1 and are independent per weight). Two distinct queries ``i != j`` share
``s`` and ``u`` and overlap on ``r``:

    Cov(o_i, o_j) - s_v = e_v + (f_v - e_v) sum_t E[A_it A_jt] = e_v + (f_v - e_v) / T,

taking the two rows of weights independent (distinct queries; the keys they
share are neglected), so ``E[A_it] E[A_jt] = 1 / T^2`` by exchangeability.
That is the output's ``example_shared_var``: averaging creates it even from
independent tokens. Linear projections keep the fraction of the random part
that is per-example (exact in expectation over the weight draw). The output
projection, with fan-in ``num_heads * value_dim``, is then scaled to the
target variance.

When the weights are drawn and the values' per-channel expected values are
known (``SignalMoments.offsets``), ``realised_attention`` computes the same
moments for the drawn value and output kernels: with 8-16 channels mostly
carrying offsets (an LSTM's output), one draw is far from the expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from autoinit.estimators.core import dense_weight_variance, estimate_dense
from autoinit.moments import SignalMoments

__all__ = [
    "AttentionScales",
    "attend",
    "realised_attention",
    "attention_weight_concentration",
    "estimate_multi_head_attention",
]


@dataclass(frozen=True)
class AttentionScales:
    """Weight variances of the four projections and the output moments."""

    query: float
    key: float
    value: float
    output: float
    attention_output: SignalMoments
    result: SignalMoments
    concentration: float = 1.0
    """``E[sum_t A_t^2]`` used (before attention dropout)."""


def attention_weight_concentration(
    keys: int, score_var: float = 1.0, samples: int = 20000, seed: int = 0
) -> float:
    """``E[sum_t A_t^2]`` for ``A = softmax`` of ``keys`` i.i.d. N(0, score_var) scores."""
    t = max(int(keys), 1)
    if t == 1:
        return 1.0
    rows = max(int(samples) // t, 512)
    scores = np.random.default_rng(seed).standard_normal((rows, t)) * np.sqrt(score_var)
    a = np.exp(scores - special.logsumexp(scores, axis=1, keepdims=True))
    return float(np.mean(np.sum(a * a, axis=1)))


def estimate_multi_head_attention(
    query: SignalMoments,
    key: SignalMoments,
    value: SignalMoments,
    query_features: int,
    key_features: int,
    value_features: int,
    num_heads: int,
    value_dim: int,
    key_length: int | None,
    dropout: float = 0.0,
    target: float = 1.0,
    samples: int = 20000,
    weight_variances: tuple[float, float, float, float] | None = None,
) -> AttentionScales:
    """Scales for the projections and the layer's output moments.

    Args:
        query, key, value: moments of the three inputs.
        *_features: their last-axis sizes (the projections' fan-in).
        num_heads, value_dim: the layer's configuration.
        key_length: number of keys ``T`` (None: assume 32).
        dropout: attention-probability dropout rate (training mode).
        target: variance wanted at the layer's output.
        weight_variances: given (shared layer already initialized) instead
            of chosen.
    """
    if weight_variances is None:
        wq = dense_weight_variance(query, query_features, 1.0)
        wk = dense_weight_variance(key, key_features, 1.0)
        wv = dense_weight_variance(value, value_features, 1.0)
    else:
        wq, wk, wv, _ = weight_variances
    q = estimate_dense(query, query_features, wq)
    k = estimate_dense(key, key_features, wk)
    v = estimate_dense(value, value_features, wv).with_example_fraction(value.example_fraction)
    keys = key_length or 32
    concentration = attention_weight_concentration(keys, q.var * k.var, samples)
    attended = attend(v, concentration, keys, dropout)
    fan_in = num_heads * value_dim
    wo = dense_weight_variance(attended, fan_in, target) if weight_variances is None else weight_variances[3]
    result = estimate_dense(attended, fan_in, wo).with_example_fraction(attended.example_fraction)
    return AttentionScales(wq, wk, wv, wo, attended, result, concentration)


def attend(v: SignalMoments, concentration: float, keys: int, dropout: float = 0.0) -> SignalMoments:
    """Moments of ``o = sum_t A_t v_t`` (see the module docstring) for values
    ``v`` whose offsets are per channel, ``E[sum_t A_t^2] = concentration``.
    With realised per-channel ``offsets`` they pass whole (weights sum to 1)."""
    if dropout > 0.0:
        concentration /= 1.0 - dropout
    if v.offsets is not None and v.offsets.ndim == 1:
        random = np.broadcast_to(v.random_map(), v.offsets.shape)
        example = v.example_fraction * random
        out = SignalMoments.from_offsets(v.offsets, example + (random - example) * concentration)
        return replace(
            out, example_shared_var=float(np.mean(example + (random - example) / max(int(keys), 1)))
        )
    example = v.example_shared_var
    independent = max(v.fluctuating_var - example, 0.0)
    second = v.shared_var + example + independent * concentration
    return SignalMoments(
        0.0, second, v.shared_var, example_shared_var=example + independent / max(int(keys), 1)
    )


def realised_attention(
    value: SignalMoments,
    value_kernel: np.ndarray,
    output_kernel: np.ndarray,
    concentration: float,
    keys: int,
    dropout: float = 0.0,
) -> SignalMoments | None:
    """Output moments of the attention for drawn kernels, or None when the
    value's per-channel offsets are unknown.

    ``value_kernel`` is ``(features, heads, value_dim)``, ``output_kernel``
    ``(heads, value_dim, output_features)``. For one draw the value channels
    are correlated (``Cov v = Wv^T diag(r) Wv`` for input features of
    independent variances ``r``), so covariances are carried, not variances:
    with per-example fraction ``f`` of ``r``, ``U = f Cov v`` and
    ``R = (1 - f) Cov v``, the attended channels have covariance
    ``U + R c_jk``, ``c_jk = E[sum A^2] / (1 - dropout)`` within a head and
    ``1 / T`` across heads (independent weights, mean ``1 / T``); two distinct
    queries share ``U + R / T``. The output is ``diag(Wo^T C Wo)`` of those,
    and offsets ``d Wv Wo`` (weights sum to 1).
    """
    x = value.per_channel()
    if x.offsets is None or x.offsets.ndim != 1:
        return None
    wv = np.asarray(value_kernel, np.float64)
    heads = wv.shape[1] if wv.ndim == 3 else 1
    wv = wv.reshape(x.offsets.shape[0], -1)
    wo = np.asarray(output_kernel, np.float64)
    wo = wo.reshape(-1, wo.shape[-1])
    if wo.shape[0] != wv.shape[1]:
        return None
    random = np.broadcast_to(x.random_map(), x.offsets.shape)
    cov = wv.T @ (random[:, None] * wv)
    fraction = x.example_fraction
    head = np.repeat(np.arange(heads), wv.shape[1] // heads)
    keys = max(int(keys), 1)
    within = concentration / (1.0 - dropout) if dropout > 0.0 else concentration
    weights = np.where(head[:, None] == head[None, :], within, 1.0 / keys)
    attended = fraction * cov + (1.0 - fraction) * cov * weights
    across = fraction * cov + (1.0 - fraction) * cov / keys
    out_random = np.einsum("jm,jk,km->m", wo, attended, wo)
    out_example = np.einsum("jm,jk,km->m", wo, across, wo)
    out = SignalMoments.from_offsets(x.offsets @ wv @ wo, out_random)
    return replace(out, example_shared_var=float(np.mean(out_example)))
