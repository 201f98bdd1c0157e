"""The zoo's small keras_hub backbones: described without building, built on demand."""

from __future__ import annotations

import sys

import pytest

from autoinit import zoo
from autoinit.errors import ModelConfigError


@pytest.mark.parametrize("name", sorted(zoo.HUB_ZOO))
def test_each_hub_example_matches_its_catalogue_entry(name):
    keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is not installed")
    entry = next(entry for entry in zoo.list_hub_models() if entry["name"] == name)
    model = zoo.build_hub(name)
    assert model.name == name
    assert (entry["num_layers"], entry["num_params"]) == (len(model.layers), model.count_params())
    assert isinstance(model, keras_hub.models.Backbone)


def test_the_hub_examples_are_their_own_registry():
    assert not set(zoo.HUB_ZOO) & set(zoo.ZOO)  # the stock-Keras zoo needs no keras_hub
    if zoo.hub_available():
        assert [entry["name"] for entry in zoo.list_hub_models()] == list(zoo.HUB_ZOO)
    with pytest.raises(ModelConfigError, match="bert_tiny, gpt2_tiny, vit_tiny"):
        zoo.build_hub("vit_huge")


def test_without_keras_hub_the_examples_are_absent_and_building_one_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # what `import keras_hub` meets when absent
    assert zoo.list_hub_models() == []
    with pytest.raises(ModelConfigError, match=r"autoinit\[hub\]"):
        zoo.build_hub("bert_tiny")
