"""Models nobody here tuned AutoInit for (``tests/corpus.py``).

Every corpus model is accepted as an upload and initialized without a
pass-through layer; a representative subset (a mobile net with op nodes and
hard-swish, two squeeze-and-excitation nets with stochastic depth, a residual
net, two evolved nets with shared modules on small maps) keeps every
weighted layer with >= 16 channels in the band for two seeds. The whole
corpus for seeds 1..5, with the init/build time ratio, is
``benchmarks/bench_real_models.py``.
"""

from __future__ import annotations

import json
import warnings

import pytest
from band import out_of_band, weighted_ratios
from corpus import APPLICATIONS, CORPUS, EVOLVED, application

from autoinit import AutoInit
from autoinit.errors import UnsupportedLayerWarning
from autoinit.upload import validate_model_config


@pytest.mark.parametrize("name", [*APPLICATIONS, *EVOLVED])
def test_every_corpus_model_is_accepted_on_upload(name):
    validate_model_config(json.loads(CORPUS[name]().to_json()))


@pytest.mark.parametrize("name", ["EfficientNetB0", "EfficientNetV2B0", "MobileNetV3Small", "ConvNeXtTiny"])
def test_once_refused_applications_go_from_upload_to_autoinit_without_pass_through(name):
    """Issue 12: refused for Normalization (EfficientNets), an ``x + y`` op node
    (MobileNetV3), and ConvNeXt's own LayerScale."""
    config = json.loads(application(name).to_json())
    validate_model_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        estimates = AutoInit(seed=1).initialize_model(config, return_estimates=True)[1]
    assert all(r["estimator"] == "builtin" for r in estimates)


CI_SUBSET = [
    "MobileNetV3Small",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ResNet50V2",
    "ConvNeXtTiny",
    "VGG16",
    "evolved_small_maps",
    "evolved_branches",
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", CI_SUBSET)
def test_real_models_keep_every_wide_weighted_layer_in_band(name, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedLayerWarning)
        ratios = weighted_ratios(CORPUS[name](), seed=seed, batch_size=64, min_channels=16)
    assert len(ratios) >= 9
    assert not out_of_band(ratios), out_of_band(ratios)


def test_a_plain_deep_cnn_does_not_drift_through_its_pools():
    """VGG16 at 64x64: its maps are larger than the walk keeps per position
    (``MAP_ELEMENTS``), so they are reduced per channel, keeping a position
    profile and the offsets' spread; before those, the error compounded
    conv by conv and pool by pool to 1.9-2.0x at fc1/fc2 (seed 1)."""
    ratios = weighted_ratios(CORPUS["VGG16"](), seed=1, batch_size=64, min_channels=16)
    assert len(ratios) == 15
    assert all(0.75 <= r <= 1.33 for r in ratios.values()), {k: round(v, 2) for k, v in ratios.items()}
