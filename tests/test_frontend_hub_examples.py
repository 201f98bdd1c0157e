"""The page's keras_hub examples (frontend/examples/hub.json) match what the zoo
builds today and pass the service's upload checks as they are."""

from __future__ import annotations

import json

import pytest
from example_files import EXAMPLES, exporter

from autoinit import zoo
from autoinit.upload import UploadLimits, parse_upload, validate_model_config

pytest.importorskip("keras_hub", reason="keras-hub is not installed")


def _hub_index() -> list[dict]:
    return json.loads((EXAMPLES / "hub.json").read_text())


def test_hub_json_lists_every_keras_hub_example_with_its_file():
    assert _hub_index() == exporter().hub_index_entries()
    assert [entry["name"] for entry in _hub_index()] == list(zoo.HUB_ZOO)
    assert not {entry["file"] for entry in _hub_index()} & {f"{name}.json" for name in zoo.ZOO}


@pytest.mark.parametrize("name", list(zoo.HUB_ZOO))
def test_each_hub_example_is_the_zoo_config_and_passes_upload_validation(name):
    committed = (EXAMPLES / f"{name}.json").read_bytes()
    assert json.loads(committed) == exporter().hub_example_config(name), (
        f"frontend/examples/{name}.json is stale: run scripts/export_examples.py"
    )
    limits = UploadLimits()
    summary = validate_model_config(parse_upload(committed, f"{name}.json", limits), limits)
    assert summary.num_layers >= 1
