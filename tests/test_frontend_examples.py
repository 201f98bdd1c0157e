"""The page's example gallery (frontend/examples/) matches what the zoo builds today."""

from __future__ import annotations

import json

import pytest
from example_files import EXAMPLES, exporter

from autoinit import zoo
from autoinit.upload import UploadLimits, parse_upload, validate_model_config


def _index() -> list[dict]:
    return json.loads((EXAMPLES / "index.json").read_text())


def test_the_index_lists_every_zoo_model_with_its_file():
    assert _index() == exporter().index_entries()
    assert {entry["name"] for entry in _index()} == set(zoo.ZOO)
    for entry in _index():
        assert (EXAMPLES / entry["file"]).is_file(), entry


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_each_example_is_the_zoo_config_and_passes_upload_validation(name):
    committed = (EXAMPLES / f"{name}.json").read_bytes()
    assert json.loads(committed) == exporter().example_config(name), (
        f"frontend/examples/{name}.json is stale: run scripts/export_examples.py"
    )
    # The page uploads these files as they are: they must pass the service's checks.
    summary = validate_model_config(parse_upload(committed, f"{name}.json", UploadLimits()), UploadLimits())
    expected_layers = {entry["name"]: entry["num_layers"] for entry in _index()}[name]
    assert summary.num_layers >= expected_layers
