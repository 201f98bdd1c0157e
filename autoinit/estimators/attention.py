"""MultiHeadAttention: AutoInit for all four projections.

Query, key and value are EinsumDense projections: each gets the dense scale
(``Var(W) = 1 / (fan_in E[x^2])``) so that q, k, v have unit variance. Then
``score = q . k / sqrt(key_dim)`` has variance ``Var(q) Var(k) = 1``, and each
head's output ``o = sum_t A_t v_t`` with ``A = softmax(score)`` over ``T`` keys:

    E[o^2] = s_v + (E[v^2] - s_v) E[sum_t A_t^2] / (1 - dropout),

where ``s_v`` is the value's shared per-channel offset (weights sum to 1, so it
passes whole) and ``E[sum_t A_t^2]`` is a seeded Monte Carlo estimate (no
closed form for finite ``T``). The output projection, with fan-in
``num_heads * value_dim``, is then scaled to the target variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from autoinit.estimators.core import dense_weight_variance, estimate_dense
from autoinit.moments import SignalMoments

__all__ = ["AttentionScales", "attention_weight_concentration", "estimate_multi_head_attention"]


@dataclass(frozen=True)
class AttentionScales:
    """Weight variances of the four projections and the output moments."""

    query: float
    key: float
    value: float
    output: float
    attention_output: SignalMoments
    result: SignalMoments


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
    v = estimate_dense(value, value_features, wv)
    concentration = attention_weight_concentration(key_length or 32, q.var * k.var, samples)
    if dropout > 0.0:
        concentration /= 1.0 - dropout
    second = v.shared_var + v.fluctuating_var * concentration
    attended = SignalMoments(0.0, second, v.shared_var)
    fan_in = num_heads * value_dim
    wo = dense_weight_variance(attended, fan_in, target) if weight_variances is None else weight_variances[3]
    return AttentionScales(wq, wk, wv, wo, attended, estimate_dense(attended, fan_in, wo))
