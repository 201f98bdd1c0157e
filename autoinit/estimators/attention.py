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

    Cov(o_i, o_j) - s_v = e_v + (f_v - e_v) sum_t E[A_it A_jt] = e_v + (f_v - e_v) w,

taking the two rows of weights independent (distinct queries; the keys they
share are neglected), so ``E[A_it A_jt] = E[A_it] E[A_jt]`` with ``E[A_it] =
1 / n_i`` on the ``n_i`` keys row ``i`` keeps (exchangeability): the overlap
``w``, averaged over pairs of rows (``row_overlap``), is ``1 / T`` without a
mask and about twice that under a causal one (early rows share their few
keys). That is the output's ``example_shared_var``: averaging creates it even
from independent tokens, and each attention layer of a decoder adds to it. Linear projections keep the fraction of the random part
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
from functools import lru_cache

import numpy as np
from scipy import special

from autoinit.estimators.core import dense_weight_variance, estimate_dense
from autoinit.moments import SignalMoments

__all__ = [
    "AttentionScales",
    "attend",
    "realised_attention",
    "attention_weight_concentration",
    "causal_rows",
    "head_overlap",
    "masked_concentration",
    "row_lengths",
    "row_overlap",
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
    overlap: float | None = None
    """``row_overlap`` used: what two queries' weights share (None: ``1 / T``)."""
    heads_overlap: float | None = None
    """``head_overlap`` used: what two heads' weights on one query share (None: ``1 / T``)."""


def attention_weight_concentration(
    keys: int, score_var: float = 1.0, samples: int = 20000, seed: int = 0
) -> float:
    """``E[sum_t A_t^2]`` for ``A = softmax`` of ``keys`` i.i.d. N(0, score_var) scores."""
    return _concentration(max(int(keys), 1), float(score_var), int(samples), int(seed))


@lru_cache(maxsize=4096)
def _concentration(keys: int, score_var: float, samples: int, seed: int) -> float:
    if keys == 1:
        return 1.0
    rows = max(samples // keys, 512)
    scores = np.random.default_rng(seed).standard_normal((rows, keys)) * np.sqrt(score_var)
    a = np.exp(scores - special.logsumexp(scores, axis=1, keepdims=True))
    return float(np.mean(np.sum(a * a, axis=1)))


def causal_rows(queries: int, keys: int) -> np.ndarray:
    """The keys each query row keeps under Keras' causal mask (``tril`` of
    ``(queries, keys)`` ones): ``(queries, keys)`` booleans."""
    return np.tril(np.ones((max(int(queries), 1), max(int(keys), 1)), dtype=bool))


def row_lengths(kept: np.ndarray) -> np.ndarray:
    """Keys kept per row of a boolean ``(..., queries, keys)`` mask (a row
    keeping none attends to all, as Keras' masked softmax gives)."""
    kept = np.asarray(kept, dtype=bool)
    counts = kept.reshape(-1, kept.shape[-1]).sum(axis=1)
    return np.where(counts == 0, kept.shape[-1], counts)


def row_overlap(kept: np.ndarray | None, keys: int) -> float:
    """``w``: the mean over pairs of distinct query rows of ``sum_t E[A_it]
    E[A_jt]``, with ``E[A_it] = 1 / n_i`` on the keys row ``i`` keeps (a
    boolean ``(..., queries, keys)`` mask; None: all ``keys``, ``w = 1 / keys``)."""
    if kept is None:
        return 1.0 / max(int(keys), 1)
    kept = np.asarray(kept, dtype=bool)
    kept = kept.reshape(-1, *kept.shape[-2:]) if kept.ndim >= 2 else kept.reshape(1, 1, -1)
    total = 0.0
    for rows in kept:
        rows = np.where(rows.any(axis=1, keepdims=True), rows, True)
        means = rows / rows.sum(axis=1, keepdims=True)
        own = float(np.sum(1.0 / rows.sum(axis=1)))
        queries = rows.shape[0]
        if queries < 2:
            total += own
            continue
        column = means.sum(axis=0)
        total += (float(column @ column) - own) / (queries * (queries - 1))
    return total / kept.shape[0]


def head_overlap(kept: np.ndarray | None, keys: int) -> float:
    """``sum_t E[A_t] E[B_t]`` for two heads' weights on one query row,
    averaged over rows: ``mean(1 / n_i)`` (None: ``1 / keys``)."""
    if kept is None:
        return 1.0 / max(int(keys), 1)
    return float(np.mean(1.0 / row_lengths(kept)))


_EXACT_LENGTHS = 64
"""Row lengths up to which ``masked_concentration`` simulates each one."""


def masked_concentration(kept: np.ndarray | None, keys: int, score_var: float, samples: int) -> float:
    """``E[sum_t A_t^2]`` averaged over rows that keep ``n_i`` of ``keys``
    keys each (``kept`` as in ``row_overlap``; None: all keys). Lengths
    beyond ``_EXACT_LENGTHS`` are simulated on a grid 5% apart and
    interpolated in ``n E[sum A^2]``, which is smooth and tends to a constant
    (``E[e^2s] / E[e^s]^2``): a causal row per length of a long sequence
    would cost ``O(T^2)`` simulated weights."""
    if kept is None:
        return attention_weight_concentration(keys, score_var, samples)
    lengths, counts = np.unique(np.clip(row_lengths(kept), 1, keys), return_counts=True)
    exact = lengths <= _EXACT_LENGTHS
    values = np.empty(lengths.size)
    values[exact] = [attention_weight_concentration(int(n), score_var, samples) for n in lengths[exact]]
    if not exact.all():
        long = lengths[~exact]
        grid = np.unique(
            np.round(
                np.geomspace(
                    _EXACT_LENGTHS, long.max(), 2 + int(np.log(long.max() / _EXACT_LENGTHS) / np.log(1.05))
                )
            )
        )
        scaled = [n * attention_weight_concentration(int(n), score_var, samples) for n in grid]
        values[~exact] = np.interp(np.log(long), np.log(grid), scaled) / long
    return float(np.average(values, weights=counts))


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
    kept: np.ndarray | None = None,
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
        kept: the keys each query keeps, ``(..., queries, keys)`` booleans
            (a causal or known attention mask); None: all.
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
    concentration = masked_concentration(kept, keys, q.var * k.var, samples)
    attended = attend(v, concentration, keys, dropout, row_overlap(kept, keys))
    fan_in = num_heads * value_dim
    wo = dense_weight_variance(attended, fan_in, target) if weight_variances is None else weight_variances[3]
    result = estimate_dense(attended, fan_in, wo).with_example_fraction(attended.example_fraction)
    return AttentionScales(
        wq, wk, wv, wo, attended, result, concentration, row_overlap(kept, keys), head_overlap(kept, keys)
    )


def attend(
    v: SignalMoments, concentration: float, keys: int, dropout: float = 0.0, overlap: float | None = None
) -> SignalMoments:
    """Moments of ``o = sum_t A_t v_t`` (see the module docstring) for values
    ``v`` whose offsets are per channel, ``E[sum_t A_t^2] = concentration``
    and two rows' overlap ``overlap`` (``row_overlap``; None: ``1 / keys``).
    With realised per-channel ``offsets`` they pass whole (weights sum to 1),
    as does the mean."""
    if dropout > 0.0:
        concentration /= 1.0 - dropout
    overlap = 1.0 / max(int(keys), 1) if overlap is None else overlap
    if v.offsets is not None and v.offsets.ndim == 1:
        random = np.broadcast_to(v.random_map(), v.offsets.shape)
        example = v.example_fraction * random
        out = SignalMoments.from_offsets(v.offsets, example + (random - example) * concentration)
        return replace(out, example_shared_var=float(np.mean(example + (random - example) * overlap)))
    example = v.example_shared_var
    independent = max(v.fluctuating_var - example, 0.0)
    var = v.shared_var + example + independent * concentration
    return SignalMoments(v.mean, var, v.shared_var, example_shared_var=example + independent * overlap)


def realised_attention(
    value: SignalMoments,
    value_kernel: np.ndarray,
    output_kernel: np.ndarray,
    concentration: float,
    keys: int,
    dropout: float = 0.0,
    overlap: float | None = None,
    heads_overlap: float | None = None,
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
    ``head_overlap`` across heads (independent weights); two distinct
    queries share ``U + R w`` (``w = row_overlap``; both ``1 / T`` without a
    mask). The output is ``diag(Wo^T C Wo)`` of those,
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
    overlap = 1.0 / max(int(keys), 1) if overlap is None else overlap
    heads_overlap = 1.0 / max(int(keys), 1) if heads_overlap is None else heads_overlap
    within = concentration / (1.0 - dropout) if dropout > 0.0 else concentration
    weights = np.where(head[:, None] == head[None, :], within, heads_overlap)
    attended = fraction * cov + (1.0 - fraction) * cov * weights
    across = fraction * cov + (1.0 - fraction) * cov * overlap
    out_random = np.einsum("jm,jk,km->m", wo, attended, wo)
    out_example = np.einsum("jm,jk,km->m", wo, across, wo)
    out = SignalMoments.from_offsets(x.offsets @ wv @ wo, out_random)
    return replace(out, example_shared_var=float(np.mean(out_example)))
