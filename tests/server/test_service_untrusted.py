"""Every class of bad upload is refused in the API, as problem+json, before a job exists."""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile

import pytest
from service_helpers import MAX_LAYERS, MAX_UPLOAD_BYTES, mlp_config

PROBLEM = "application/problem+json"


def _jobs_in_store(client) -> int:
    text = client.get("/metrics").text
    return int(sum(float(v) for v in re.findall(r'^autoinit_jobs\{status="\w+"\} (\S+)$', text, re.M)))


def _refused(answer, status: int, *phrases: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    for phrase in phrases:
        assert phrase.lower() in problem["detail"].lower(), problem
    return problem


def _with_layer(layer: dict) -> dict:
    config = mlp_config()
    config["config"]["layers"].insert(2, layer)
    return config


def _archive(config_bytes: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", config_bytes)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture()
def jobs_before(client):
    return _jobs_in_store(client)


def test_invalid_json_is_refused_with_its_position(client, jobs_before):
    answer = client.post("/initialize", files={"model": ("m.json", b'{"class_name": "Sequential",,}')})
    _refused(answer, 422, "line 1")
    assert _jobs_in_store(client) == jobs_before


def test_lambda_layer_is_refused_because_it_carries_code(client, jobs_before):
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "registered_name": None,
        "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "ZXZpbA=="}}},
    }
    problem = _refused(
        client.post("/initialize", json=_with_layer(lam)),
        422,
        "Lambda layers carry Python code and are refused",
    )
    assert problem["title"] == "Unsafe model config refused"
    assert _jobs_in_store(client) == jobs_before


def _keras_layer(class_name: str, module: str = "keras.layers", **config) -> dict:
    return {
        "module": module,
        "class_name": class_name,
        "registered_name": None,
        "config": {"name": class_name.lower(), **config},
    }


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"nested": value}
    return value


@pytest.mark.parametrize(
    "layer, phrase",
    [
        (_keras_layer("TFOpLambda", function="math.add"), "TFOpLambda"),
        (_keras_layer("SlicingOpLambda", function="__operators__.getitem"), "SlicingOpLambda"),
        (_keras_layer("TFSMLayer", filepath="/srv/model"), "TFSMLayer"),
        (_keras_layer("TorchModuleWrapper", module="torch.nn"), "TorchModuleWrapper"),
        (_keras_layer("StringLookup", vocabulary="/etc/passwd"), "StringLookup"),
        (_keras_layer("IntegerLookup", vocabulary="/etc/passwd"), "IntegerLookup"),
        (_keras_layer("TextVectorization", vocabulary="/etc/passwd"), "TextVectorization"),
        (
            _keras_layer(
                "Dense",
                units=4,
                kernel_initializer={
                    "class_name": "__numpy__",
                    "config": {"value": [1.0], "dtype": "float32"},
                },
            ),
            "__numpy__",
        ),
        ({**_keras_layer("Dense", units=4), "registered_name": "Custom>Dense"}, "registered_name"),
        (_keras_layer("Dense", units=4, extra=_deep(200)), "deep"),
        (_keras_layer("Dense", units=2_000_000_000), "parameters"),
    ],
    ids=[
        "tfoplambda",
        "slicingoplambda",
        "tfsmlayer",
        "torch",
        "stringlookup",
        "integerlookup",
        "textvectorization",
        "numpy-object",
        "registered-name",
        "nesting-depth",
        "parameter-count",
    ],
)
def test_every_refused_construct_is_a_422_before_any_job_exists(client, jobs_before, layer, phrase):
    answer = client.post("/initialize", json=_with_layer(layer))
    assert answer.status_code in (413, 422), answer.text
    _refused(answer, answer.status_code, phrase)
    assert _jobs_in_store(client) == jobs_before


def test_class_from_an_unknown_module_is_refused(client, jobs_before):
    foreign = {"module": "os", "class_name": "system", "registered_name": None, "config": {"name": "shell"}}
    _refused(client.post("/initialize", json=_with_layer(foreign)), 422, "os")
    assert _jobs_in_store(client) == jobs_before


def test_hdf5_and_savedmodel_uploads_are_refused(client):
    hdf5 = b"\x89HDF\r\n\x1a\n" + b"\0" * 64
    _refused(client.post("/initialize", files={"model": ("model.h5", hdf5)}), 415, ".keras")
    _refused(client.post("/initialize", files={"model": ("weights.bin", hdf5)}), 415, "HDF5")
    saved_model = _archive(b"{}", {"saved_model.pb": b"\x08\x01"})
    _refused(client.post("/initialize", files={"model": ("model.zip", saved_model)}), 422, "SavedModel")


def test_zip_bomb_archive_is_refused_without_being_expanded(client, jobs_before):
    bomb = _archive(
        b'{"class_name": "Sequential", "config": {"layers": []}, "pad": "' + b" " * 5_000_000 + b'"}'
    )
    assert len(bomb) < 50_000
    _refused(client.post("/initialize", files={"model": ("bomb.keras", bomb)}), 422, "zip bomb")
    assert _jobs_in_store(client) == jobs_before


def test_uploads_over_the_size_limit_get_413(client):
    huge = b" " * (MAX_UPLOAD_BYTES + 2_000_000)  # refused from Content-Length, unread
    _refused(
        client.post("/initialize", content=huge, headers={"content-type": "application/json"}), 413, "limit"
    )
    just_over = json.dumps(mlp_config()).encode() + b" " * MAX_UPLOAD_BYTES  # read, then refused
    _refused(client.post("/initialize", files={"model": ("m.json", just_over)}), 413, f"{MAX_UPLOAD_BYTES:,}")
    as_plain_field = {"model": (None, b" " * (MAX_UPLOAD_BYTES + 10))}
    _refused(client.post("/initialize", files=as_plain_field), 413, f"{MAX_UPLOAD_BYTES:,}")

    def chunks():  # no Content-Length: counted while read
        for _ in range(40):
            yield b" " * 100_000

    _refused(
        client.post("/initialize", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "larger than",
    )


def test_too_many_layers_are_refused(client, jobs_before):
    config = mlp_config()
    dense = config["config"]["layers"][1]
    layers = [config["config"]["layers"][0]]
    for index in range(MAX_LAYERS + 5):
        layer = copy.deepcopy(dense)
        layer["config"]["name"] = f"dense_{index}"
        layer["config"]["units"] = 4
        layers.append(layer)
    config["config"]["layers"] = layers
    _refused(client.post("/initialize", json=config), 422, f"more than {MAX_LAYERS} layers")
    assert _jobs_in_store(client) == jobs_before


def test_invalid_options_and_missing_fields_are_explained(client):
    body = {"model": ("m.json", json.dumps(mlp_config()))}
    _refused(client.post("/initialize", files=body, params={"distribution": "cauchy"}), 422, "distribution")
    _refused(client.post("/initialize", files=body, data={"options": '{"seed": -1}'}), 422, "seed")
    _refused(client.post("/initialize", files=body, data={"options": "[1]"}), 422, "JSON object")
    _refused(client.post("/initialize", files=body, data={"options": '{"colour": 1}'}), 422, "colour")
    _refused(client.post("/initialize", files={"other": ("m.json", b"{}")}), 422, "'model'")
    _refused(client.post("/initialize", json=[1, 2]), 422)


def test_unknown_jobs_and_paths_answer_404_problems(client):
    _refused(client.get("/jobs/0123456789abcdef"), 404, "no job has id")
    _refused(client.get("/jobs/0123456789abcdef/traces"), 404)
    _refused(client.get("/no/such/path"), 404)


def test_refusals_are_counted_in_metrics(client):
    before = client.get("/metrics").text
    client.post("/initialize", files={"model": ("m.json", b"not json")})
    after = client.get("/metrics").text

    def refused(text: str) -> float:
        match = re.search(r'^autoinit_uploads_refused_total\{status="422"\} (\S+)$', text, re.M)
        return float(match.group(1)) if match else 0.0

    assert refused(after) == refused(before) + 1
