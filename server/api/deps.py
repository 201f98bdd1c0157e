"""Dependencies the routes share, as ``Annotated`` aliases.

* `ServiceDep` - the app's `server.service.Service` (``app.state.service``);
* `SettingsDep` - its `Settings`;
* `require_api_key` - the API-key check (header, bearer token or the page's cookie);
* `JobDep` - the job named by the ``{job_id}`` path parameter, refreshed; 404 if unknown;
* `QueryOptionsDep` - the options given as query parameters, one per field of
  `autoinit.options.InitializeOptions` (derived from it, not written out again).

Each is a plain function, so a test can replace it with
``app.dependency_overrides[get_service] = ...``.
"""

from __future__ import annotations

import hmac
import inspect
from typing import Annotated, Any, get_origin
from urllib.parse import unquote

from fastapi import Depends, Query, Request

from autoinit.options import InitializeOptions
from server.jobs import JobRecord
from server.problems import ProblemError
from server.service import Service
from server.settings import Settings

__all__ = [
    "KEY_COOKIE",
    "JobDep",
    "QueryOptionsDep",
    "ServiceDep",
    "SettingsDep",
    "get_job",
    "get_service",
    "get_settings",
    "options_from_query",
    "require_api_key",
]

#: Cookie the page stores an API key in (see frontend/).
KEY_COOKIE = "autoinit_api_key"


def get_service(request: Request) -> Service:
    """The service `server.app.create_app` attached to the app."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_api_key(request: Request, settings: SettingsDep) -> None:
    """Refuse with 401 unless a configured API key came with the request.

    Keys are read from ``X-API-Key``, ``Authorization: Bearer <key>``, or the
    page's ``SameSite=Strict`` cookie (so its plain download links work and
    other sites' requests never carry it). No keys configured: everyone passes.
    """
    keys = settings.api_key_set
    if not keys:
        return
    given = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None:
        cookie = request.cookies.get(KEY_COOKIE)
        given = unquote(cookie) if cookie is not None else None
    if given is None or not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        raise ProblemError(
            401,
            "API key required",
            "Send a valid API key in the X-API-Key header or as 'Authorization: Bearer "
            "<key>'." + (" The key given is not valid." if given is not None else ""),
            headers={"WWW-Authenticate": "Bearer"},
        )


async def get_job(job_id: str, service: ServiceDep) -> JobRecord:
    """The job ``job_id``, brought up to date; 404 when unknown or expired."""
    job = await service.refreshed(job_id)
    if job is None:
        raise ProblemError(
            404, "Job not found", f"No job has id {job_id!r}; it may have expired or been deleted."
        )
    return job


JobDep = Annotated[JobRecord, Depends(get_job)]


def options_from_query(**given: Any) -> dict[str, Any]:
    """The `InitializeOptions` fields given in the query string (the others are None)."""
    return {name: value for name, value in given.items() if value is not None}


def _query_parameter(name: str, field: Any) -> inspect.Parameter:
    annotation, description = field.annotation, field.description or ""
    if get_origin(annotation) is list:  # a query string carries a list comma-separated
        annotation, description = str, f"{description} Comma-separated, e.g. default,he_normal."
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=Query(None, description=description),
        annotation=annotation | None,
    )


options_from_query.__signature__ = inspect.Signature(
    [_query_parameter(name, field) for name, field in InitializeOptions.model_fields.items()],
    return_annotation=dict[str, Any],
)

QueryOptionsDep = Annotated[dict[str, Any], Depends(options_from_query)]
