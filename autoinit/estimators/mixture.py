"""Mixture-of-experts blocks: a router weighs a few experts per token.

A router (a dense layer, logits ``l`` over ``E`` experts) gives ``p =
softmax(l)``; each token keeps its ``k`` largest weights (renormalized to sum
to one, or not) and its output is ``y = sum_e r_e o_e`` over the experts'
outputs ``o_e``. The experts are independent functions with independent
weights, so for experts of output moments ``(0, v)``: ``E[y] = 0`` and
``E[y^2] = E[sum_e r_e^2] v``. ``E[sum_e r_e^2]`` (the routing weights'
concentration: ``1 / k`` for equal weights, more for a peaked router) has no
closed form; it is a seeded Monte Carlo estimate over ``N(0, logit_var)``
logits, as the attention weights' concentration is.

Each expert here is a gated feed-forward network ``W_o (act(W_g x) * W_u
x)``: with ``W_g x`` and ``W_u x`` of unit variance and independent (their
weights are), the product has mean ``E[act(g)] E[u] = 0`` and second moment
``E[act(g)^2] E[u^2]``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special

from autoinit.estimators.activations import Activation, estimate_activation
from autoinit.estimators.merging import estimate_multiply
from autoinit.moments import SignalMoments

__all__ = ["gated_hidden", "routing_concentration"]


def routing_concentration(
    experts: int, top_k: int, normalized: bool, logit_var: float = 1.0, samples: int = 20000
) -> float:
    """``E[sum_e r_e^2]`` for the ``top_k`` largest of ``softmax(l)``,
    ``l ~ N(0, logit_var)`` over ``experts`` (renormalized to sum to one when
    ``normalized``; the others are zero)."""
    return _routing(
        max(int(experts), 1),
        max(min(int(top_k), int(experts)), 1),
        bool(normalized),
        float(logit_var),
        int(samples),
    )


@lru_cache(maxsize=256)
def _routing(experts: int, top_k: int, normalized: bool, logit_var: float, samples: int) -> float:
    rows = max(samples // experts, 2048)
    logits = np.random.default_rng(0).standard_normal((rows, experts)) * np.sqrt(logit_var)
    p = np.exp(logits - special.logsumexp(logits, axis=1, keepdims=True))
    kept = -np.sort(-p, axis=1)[:, :top_k]
    if normalized:
        kept = kept / kept.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(kept * kept, axis=1)))


def gated_hidden(gate: SignalMoments, up: SignalMoments, activation: Activation) -> SignalMoments:
    """Moments of ``activation(gate) * up`` for independent ``gate`` and ``up``."""
    return estimate_multiply([estimate_activation(gate, activation), up])
