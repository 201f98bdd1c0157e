"""Call a running AutoInit service from a pipeline (standard library only).

Example:
    >>> from autoinit.client import initialize
    >>> result = initialize("http://gpu-box:8000", "model.keras", seed=1,
    ...                     baselines=["default", "he_normal"])
    >>> model = keras.saving.load_model(result.model_path)

``model_or_path`` may be a path to a ``.keras`` archive or a JSON config, a
config dict, a JSON string, or a ``keras.Model`` (sent as ``to_json()``).
The options are those of ``POST /initialize``: ``input_mean``, ``input_var``,
``signal_variance``, ``distribution``, ``seed``, ``probe_batch``,
``baselines``, ``backward``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoinit.errors import AutoInitError

__all__ = ["InitializeResult", "ServiceError", "JobFailedError", "initialize"]


class ServiceError(AutoInitError):
    """The service refused a request; ``status`` and ``problem`` say why."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        title = problem.get("title", "Request failed")
        super().__init__(f"HTTP {status} {title}: {problem.get('detail', '')}".rstrip(": "))


class JobFailedError(AutoInitError):
    """The job ran and failed; ``job`` is the job resource."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        error = job.get("error") or {}
        super().__init__(f"Job {job.get('id')} failed: {error.get('title')}. {error.get('detail')}")


@dataclass(frozen=True)
class InitializeResult:
    """Where the downloaded files are, and the finished job resource."""

    model_path: Path
    traces_path: Path
    config_path: Path
    job: dict[str, Any]


def _payload(model_or_path: Any) -> tuple[bytes, str]:
    if hasattr(model_or_path, "to_json") and callable(model_or_path.to_json):
        return model_or_path.to_json().encode(), f"{getattr(model_or_path, 'name', 'model')}.json"
    if isinstance(model_or_path, dict):
        return json.dumps(model_or_path).encode(), "model.json"
    if isinstance(model_or_path, str) and model_or_path.lstrip().startswith("{"):
        return model_or_path.encode(), "model.json"
    path = Path(model_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Expected a keras.Model, a config dict, a JSON string or a path to a .keras/.json "
            f"file. Received: {model_or_path!r}, which is not a file."
        )
    return path.read_bytes(), path.name


def _multipart(fields: dict[str, tuple[str | None, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, data, content_type) in fields.items():
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class _Http:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.base = url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"title": error.reason, "detail": raw[:500].decode(errors="replace")}
            raise ServiceError(error.code, problem if isinstance(problem, dict) else {}) from None

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return json.loads(self.request(method, path, **kwargs)[1])


def initialize(
    url: str,
    model_or_path: Any,
    *,
    api_key: str | None = None,
    timeout: float = 600,
    out_dir: str | Path = ".",
    **options: Any,
) -> InitializeResult:
    """Upload a model, wait for the job, download the initialized model.

    Writes ``<name>-autoinit.keras``, ``<name>-traces.json`` and
    ``<name>-config.json`` into ``out_dir``.

    Raises:
        ServiceError: the upload was refused (4xx/5xx, with the server's detail).
        JobFailedError: the job ran and failed.
        TimeoutError: the job did not finish within ``timeout`` seconds.
    """
    data, filename = _payload(model_or_path)
    body, content_type = _multipart(
        {
            "model": (filename, data, "application/octet-stream"),
            "options": (None, json.dumps(options).encode(), "application/json"),
        }
    )
    http = _Http(url, api_key)
    deadline = time.monotonic() + timeout
    first_wait = max(0.0, min(30.0, timeout))
    job = http.json(
        "POST",
        f"/initialize?wait={first_wait:g}",
        body=body,
        content_type=content_type,
        timeout=first_wait + 60,
    )
    delay = 0.25
    while job["status"] not in ("succeeded", "failed"):
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"Job {job['id']} is still {job['status']} after {timeout:g} s "
                f"({job.get('stage')}, {job.get('progress', 0):.0%}); it keeps "
                f"running on the server: {url.rstrip('/')}/jobs/{job['id']}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
        job = http.json("GET", f"/jobs/{job['id']}")
    if job["status"] == "failed":
        raise JobFailedError(job)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(filename).stem.removesuffix(".keras") or job["id"]
    paths = {}
    for name, suffix in (
        ("model", "-autoinit.keras"),
        ("traces", "-traces.json"),
        ("config", "-config.json"),
    ):
        _, content = http.request("GET", f"/jobs/{job['id']}/{name}", timeout=max(60.0, timeout))
        paths[name] = out / f"{stem}{suffix}"
        paths[name].write_bytes(content)
    return InitializeResult(
        model_path=paths["model"], traces_path=paths["traces"], config_path=paths["config"], job=job
    )
