"""Mixture-of-experts blocks (``estimators.mixture``, keras_hub's Qwen 3 MoE and Mixtral):
the routing weights' concentration, a gated expert's moments, and the block
scaled as a whole (its ``call`` routes with ``top_k`` and ``one_hot``, which
a trace would pass through: Qwen 3 MoE's expert bank was passed through with
keras_hub's own draw and no target; Mixtral raised an EstimationError at its
renormalization)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from band import BAND
from scipy import special

from autoinit.estimators.activations import ACTIVATIONS
from autoinit.estimators.attention import attention_weight_concentration
from autoinit.estimators.mixture import gated_hidden, routing_concentration
from autoinit.moments import SignalMoments


def test_routing_concentration_in_its_limits():
    assert routing_concentration(8, 1, normalized=True) == 1.0  # one expert, all the weight
    assert routing_concentration(8, 8, normalized=True) == pytest.approx(
        attention_weight_concentration(8, 1.0, 20000), rel=0.02
    )  # every expert: the softmax itself
    assert routing_concentration(8, 2, normalized=True, logit_var=1e-12) == pytest.approx(
        0.5
    )  # equal weights


@pytest.mark.parametrize(("top_k", "normalized"), [(2, True), (2, False), (4, False)])
def test_routing_concentration_matches_a_simulation(top_k, normalized):
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((200_000, 16)) * math.sqrt(2.0)
    p = np.exp(logits - special.logsumexp(logits, axis=1, keepdims=True))
    kept = np.sort(p, axis=1)[:, -top_k:]
    kept = kept / kept.sum(axis=1, keepdims=True) if normalized else kept
    expected = float(np.mean(np.sum(kept**2, axis=1)))
    assert routing_concentration(16, top_k, normalized, logit_var=2.0) == pytest.approx(expected, rel=0.02)


def test_a_gated_hidden_layer_matches_a_simulation():
    rng = np.random.default_rng(3)
    g, u = rng.standard_normal((2, 1_000_000))
    h = ACTIVATIONS["silu"].fn(g) * u
    out = gated_hidden(SignalMoments(0.0, 1.0), SignalMoments(0.0, 1.0), ACTIVATIONS["silu"])
    assert out.mean == pytest.approx(0.0, abs=1e-12)
    assert out.var == pytest.approx(float(np.mean(h * h)), rel=0.01)


@pytest.mark.parametrize(
    ("name", "seed"), [("Qwen3MoeBackbone", 1), ("Qwen3MoeBackbone", 2), ("MixtralBackbone", 1)]
)
def test_a_sparse_moe_block_is_scaled_whole_and_in_band(name, seed):
    pytest.importorskip("keras_hub")
    from hub_corpus import band_ratios, small_backbone

    from autoinit import AutoInit
    from autoinit.errors import UnsupportedLayerWarning
    from autoinit.probe import probe

    model = small_backbone(name, 2)
    banks = [layer for layer in model._flatten_layers() if type(layer).__name__.endswith("MoeExperts")]
    before = {v.path: np.array(v.numpy()) for bank in banks for v in bank.weights}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        model, estimates = AutoInit(seed=seed).initialize_model(model, return_estimates=True)
    assert len(banks) == 2 and len(before) == 2 * len(banks[0].weights)
    for bank in banks:
        for v in bank.weights:
            assert not np.array_equal(v.numpy(), before[v.path]), v.path  # redrawn at AutoInit's scale
    blocks = {r["name"]: r for r in estimates if r["class_name"].endswith("SparseMoeBlock")}
    inputs = {"experts_in"} if name == "Qwen3MoeBackbone" else {"experts_gate", "experts_up"}
    assert len(blocks) == 2
    assert all(set(r["weight_variances"]) == {"router", "experts_out", *inputs} for r in blocks.values())
    measured = band_ratios(estimates, probe(model, batch_size=32, seed=seed))
    low, high = BAND
    assert all(low <= measured[name] <= high for name in blocks), {n: measured[n] for n in blocks}
    assert {k: round(r, 3) for k, r in measured.items() if not low <= r <= high} == {}
