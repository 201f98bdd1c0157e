"""The zoo's small keras_hub backbones: described without building, built on demand."""

from __future__ import annotations

import pytest

from autoinit import zoo
from autoinit.errors import ModelConfigError

keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed")


@pytest.mark.parametrize("name", sorted(zoo.HUB_ZOO))
def test_each_hub_example_matches_its_catalogue_entry(name):
    entry = next(entry for entry in zoo.list_hub_models() if entry["name"] == name)
    model = zoo.build_hub(name)
    assert model.name == name
    assert (entry["num_layers"], entry["num_params"]) == (len(model.layers), model.count_params())
    assert isinstance(model, keras_hub.models.Backbone)


def test_the_hub_examples_are_their_own_registry():
    assert [entry["name"] for entry in zoo.list_hub_models()] == list(zoo.HUB_ZOO)
    assert not set(zoo.HUB_ZOO) & set(zoo.ZOO)  # the stock-Keras zoo needs no keras_hub
    with pytest.raises(ModelConfigError, match="bert_tiny, gpt2_tiny"):
        zoo.build_hub("vit_huge")
