"""Hostile input over HTTP (issue 13): never a 500, refusals before any job, slow clients cut off.

Every reproducer of issue 13 that reaches the server is sent as it was; each
must get a 4xx ``application/problem+json`` answer and leave no job behind.
Timeouts are checked on a raw socket against a server with short timeouts; no
test asserts how long anything took (the socket timeout is only a hang guard).
"""

from __future__ import annotations

import json
import re
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import ServiceProcess, mlp_config, serving

from server.api import deps
from server.app import create_app
from server.connections import guarded_protocol
from server.settings import Settings

PROBLEM = "application/problem+json"
HANG_GUARD = 60.0  # seconds: only to fail instead of hanging; never a measurement


def _jobs_in_store(client) -> int:
    text = client.get("/metrics").text
    return int(sum(float(v) for v in re.findall(r'^autoinit_jobs\{status="\w+"\} (\S+)$', text, re.M)))


def _problem(answer: httpx.Response, *statuses: int) -> dict:
    assert answer.status_code in statuses, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"] == PROBLEM, answer.headers
    problem = answer.json()
    assert problem["status"] == answer.status_code and problem["title"] and problem["detail"]
    return problem


def _api_only(folder, env: dict[str, str] | None = None):
    api = ServiceProcess(folder / "data", "--workers", "0", env=env)
    api.wait_healthy()
    return api


@pytest.fixture(scope="module")
def hostile_api(tmp_path_factory):
    """API only (no worker), its timeouts the defaults."""
    api = _api_only(tmp_path_factory.mktemp("hostile"))
    yield api
    api.stop()


@pytest.fixture(scope="module")
def strict_api(tmp_path_factory):
    """API only, with 1 s header and body timeouts: only for the requests that
    are meant to be cut off (a legitimate request there could be too, by a
    stall of the machine)."""
    api = _api_only(
        tmp_path_factory.mktemp("strict"), {"AUTOINIT_HEADER_TIMEOUT": "1", "AUTOINIT_BODY_TIMEOUT": "1"}
    )
    yield api
    api.stop()


@pytest.fixture()
def api_client(hostile_api):
    with httpx.Client(base_url=hostile_api.url, timeout=HANG_GUARD) as http:
        yield http


# --- Reproducers of issue 13 ------------------------------------------------------------

MALFORMED_CONFIGS = {
    "module-not-a-string": {"class_name": "Sequential", "module": 5, "config": {"layers": []}},
    "layers-not-a-list": {"module": "keras", "class_name": "Sequential", "config": {"layers": 5}},
    "layer-not-an-object": {"class_name": "Sequential", "keras_version": "2.15", "config": {"layers": ["x"]}},
    "config-null": {"class_name": "Model", "config": None},
    "functional-layer-without-name": {
        "class_name": "Functional",
        "keras_version": "2.15",
        "config": {"layers": [{"class_name": "Dense", "config": {}}]},
    },
    "class-name-a-list": {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"layers": [{"module": "keras.layers", "class_name": [1], "config": {}}]},
    },
}


def _deep_list(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def _nested_sequentials(levels: int) -> dict:
    model: dict = {"module": "keras", "class_name": "Sequential", "config": {"layers": []}}
    for _ in range(levels):
        model = {"module": "keras", "class_name": "Sequential", "config": {"layers": [model]}}
    return model


@pytest.mark.parametrize("config", list(MALFORMED_CONFIGS.values()), ids=list(MALFORMED_CONFIGS))
def test_malformed_configs_get_a_4xx_problem_and_no_job(api_client, config):
    before = _jobs_in_store(api_client)
    _problem(api_client.post("/initialize", json=config), 413, 415, 422)
    assert _jobs_in_store(api_client) == before


def test_deep_nesting_in_a_config_is_refused_without_recursion_errors(api_client):
    before = _jobs_in_store(api_client)
    deep_list = mlp_config()
    deep_list["config"]["layers"][1]["config"]["extra"] = _deep_list(500)
    for config in (deep_list, _nested_sequentials(200)):
        problem = _problem(api_client.post("/initialize", json=config), 413, 422)
        assert "Recursion" not in problem["detail"], problem
    assert _jobs_in_store(api_client) == before


@pytest.mark.parametrize(
    "options, phrase",
    [
        ('{"seed": ' + "9" * 5000 + "}", "digits"),
        ('{"seed": ' + "[" * 2000 + "]" * 2000 + "}", "nested"),
        ('{"seed": 1, "seed": 2}', "twice"),
        ('{"seed": 4294967296}', "seed"),
        ('{"input_mean": 1e999}', "input_mean"),
        ('{"distribution": "\\ud800"}', "unicode"),
        ('{"probe_batch": 100000}', "probe_batch"),
    ],
    ids=[
        "huge-number",
        "deep-list",
        "duplicate-key",
        "seed-over-32-bits",
        "infinite-float",
        "lone-surrogate",
        "probe-batch-over-limit",
    ],
)
def test_hostile_options_get_a_422_problem_and_no_job(api_client, options, phrase):
    before = _jobs_in_store(api_client)
    body = {"model": ("m.json", json.dumps(mlp_config()))}
    problem = _problem(api_client.post("/initialize", files=body, data={"options": options}), 422)
    assert phrase.lower() in problem["detail"].lower(), problem
    assert _jobs_in_store(api_client) == before


def test_the_largest_seed_is_accepted(api_client):
    body = {"model": ("m.json", json.dumps(mlp_config()))}
    answer = api_client.post("/initialize", files=body, data={"options": '{"seed": 4294967295}'})
    assert answer.status_code == 202, answer.text
    assert answer.json()["options"]["seed"] == 2**32 - 1


def test_an_unpaired_surrogate_in_a_config_is_refused_before_a_job_exists(api_client):
    before = _jobs_in_store(api_client)
    body = b'{"module":"keras","class_name":"Sequential","config":{"name":"\\ud800","layers":[]}}'
    problem = _problem(
        api_client.post("/initialize", content=body, headers={"content-type": "application/json"}), 422
    )
    assert "unicode" in problem["detail"].lower(), problem
    assert _jobs_in_store(api_client) == before
    named = mlp_config()
    named["config"]["layers"][1]["config"]["name"] = "\ud83d"  # half of an emoji
    text = json.dumps(named)  # ensure_ascii: the surrogate travels as \ud83d
    _problem(api_client.post("/initialize", files={"model": ("m.json", text)}), 422)
    assert _jobs_in_store(api_client) == before


@pytest.mark.parametrize("width", [15_000, 100_000])
def test_a_model_over_the_parameter_limit_is_refused_from_its_stated_shapes(api_client, width):
    """No ``build_config``: the parameters follow from the input shape the config states."""
    before = _jobs_in_store(api_client)
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "wide",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, width], "dtype": "float32", "name": "wide_input"},
                },
                {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": width}},
            ],
        },
    }
    problem = _problem(api_client.post("/initialize", json=config), 413, 422)
    assert "parameters" in problem["detail"], problem
    assert _jobs_in_store(api_client) == before


def test_hdf5_magic_at_a_user_block_offset_is_an_unsupported_format(api_client):
    data = b"\0" * 512 + b"\x89HDF\r\n\x1a\n" + b"\0" * 64
    _problem(api_client.post("/initialize", files={"model": ("model.json", data)}), 415)


def test_unknown_job_ids_of_any_shape_get_404_problems(api_client):
    for job_id in ("%ED%A0%80", "%00", "x" * 300, "..%2F..%2Fetc", "0123456789abcdef0123456789abcdef"):
        _problem(api_client.get(f"/jobs/{job_id}"), 404)


# --- The connection: malformed requests, half-sent requests, keep-alive ------------------


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=HANG_GUARD)
    sock.settimeout(HANG_GUARD)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)  # socket.timeout (the hang guard) fails the test
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/problem+json" in head.lower(), head
    return status, json.loads(body)


def test_a_negative_content_length_gets_a_400_problem(hostile_api):
    with _raw(hostile_api.url) as sock:
        sock.sendall(b"POST /initialize HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        status, problem = _status_and_body(_read_until_closed(sock))
    assert status == 400 and problem["status"] == 400


def test_a_half_sent_request_head_is_cut_off(strict_api):
    with _raw(strict_api.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, problem = _status_and_body(_read_until_closed(sock))
    assert status == 408 and "AUTOINIT_HEADER_TIMEOUT" in problem["detail"]
    with _raw(strict_api.url) as silent:  # connected, never sent a byte
        assert _read_until_closed(silent) == b""


def test_a_half_sent_request_body_is_cut_off(strict_api):
    with _raw(strict_api.url) as sock:
        sock.sendall(
            b"POST /initialize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"class_name": '
        )
        status, problem = _status_and_body(_read_until_closed(sock))
    assert status == 408 and "AUTOINIT_BODY_TIMEOUT" in problem["detail"]
    assert httpx.get(strict_api.url + "/healthz", timeout=HANG_GUARD).status_code == 200


def test_errors_keep_the_connection_alive(hostile_api):
    with _raw(hostile_api.url) as sock:
        for request, status in (
            (b"GET /jobs/nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (
                b"POST /initialize HTTP/1.1\r\nHost: x\r\nContent-Type: "
                b"application/json\r\nContent-Length: 5\r\n\r\nnope!",
                422,
            ),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ):
            sock.sendall(request)
            assert _read_response(sock)[0] == status


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One Content-Length-delimited response off a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection; received {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(head.split(b" ", 2)[1]), body


def test_an_unexpected_error_is_a_500_problem_and_the_connection_survives(tmp_path):
    """The one 500 left: a bug. It is problem+json, and keep-alive still works after it."""
    app = create_app(Settings(data_dir=tmp_path / "data", frontend_dir=tmp_path / "no-page"))

    def broken_settings():
        raise RuntimeError("a bug in a dependency")

    app.dependency_overrides[deps.get_settings] = broken_settings
    with serving(app, http=guarded_protocol(5.0)) as url, _raw(url) as sock:
        sock.sendall(b"GET /jobs/abc HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = _read_response(sock)
        assert status == 500 and json.loads(body)["detail"] == "RuntimeError: a bug in a dependency"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[0] == 200


# --- Property-based: random options never make the server fail --------------------------

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=8)
)
_json_value = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["seed", "input_mean", "baselines", "distribution", "x"]), inner, max_size=3
        )
    ),
    max_leaves=12,
)


@given(
    options=st.dictionaries(
        st.sampled_from(
            ["seed", "input_mean", "input_var", "probe_batch", "baselines", "distribution", "backward", "zz"]
        ),
        _json_value,
        max_size=4,
    )
)
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_random_options_get_a_job_or_a_4xx_problem(hostile_api, options):
    text = json.dumps(options)  # ensure_ascii: lone surrogates travel as escapes
    with httpx.Client(base_url=hostile_api.url, timeout=HANG_GUARD) as client:
        answer = client.post(
            "/initialize", files={"model": ("m.json", json.dumps(mlp_config()))}, data={"options": text}
        )
    if answer.status_code != 202:
        _problem(answer, 422)


def test_a_stored_job_holding_invalid_unicode_still_renders(tmp_path):
    """Records written before intake refused lone surrogates: GET /jobs/{id} answers anyway."""
    app = create_app(Settings(data_dir=tmp_path / "data", frontend_dir=tmp_path / "no-page"))
    job = app.state.service.store.create(options={}, model={"name": "\ud800"}, filename="m.json")
    with serving(app) as url:
        answer = httpx.get(f"{url}/jobs/{job.id}", timeout=HANG_GUARD)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["name"] == "\\ud800"
