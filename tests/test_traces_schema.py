"""The traces payload has a schema, and what compare() and train_probe() produce fits it."""

from __future__ import annotations

import copy

import keras
import pytest
from pydantic import ValidationError

from autoinit.probe import compare
from autoinit.traces_schema import traces_json_schema, validate_traces
from autoinit.training import train_probe


def fused_mlp() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(3),
        ],
        name="fused_mlp",
    )


@pytest.fixture(scope="module")
def traces() -> dict:
    payload = compare(fused_mlp(), baselines=("default", "he_normal"), batch_size=32, backward=True)
    payload["training"] = train_probe(fused_mlp(), steps=3, batch_size=8, baselines=("default",))
    return payload


def test_compare_and_train_probe_produce_payloads_that_fit_the_schema(traces):
    checked = validate_traces(traces)
    assert checked.series == ["predicted", "default", "he_normal", "autoinit"]
    fused = [layer for layer in checked.layers if layer.pre_activation is not None]
    assert [layer.class_name for layer in fused] == ["Dense"]
    assert checked.training is not None and set(checked.training.series) == {"default", "autoinit"}


@pytest.mark.parametrize(
    "break_it, where",
    [
        (lambda t: t["layers"][1].pop("he_normal"), "has no 'he_normal' series"),
        (lambda t: t["layers"][0].update(colour="red"), "no series"),
        (lambda t: t["layers"][1].update(estimator="guessed"), "estimator"),
        (lambda t: t["training"]["series"]["autoinit"]["loss"].pop(), "3 values per curve"),
        (lambda t: t.update(series=["default", "autoinit"]), "start with 'predicted'"),
    ],
    ids=["missing-series", "stray-key", "unknown-estimator", "short-curve", "no-prediction"],
)
def test_a_payload_that_does_not_fit_is_refused_saying_where(traces, break_it, where):
    broken = copy.deepcopy(traces)
    break_it(broken)
    with pytest.raises(ValidationError, match=where):
        validate_traces(broken)


def test_the_json_schema_names_every_top_level_key():
    schema = traces_json_schema()
    assert {"model", "signal_variance", "input", "series", "layers", "training"} <= set(schema["properties"])
