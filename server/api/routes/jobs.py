"""``POST /initialize``, ``GET /jobs/{id}``, ``DELETE /jobs/{id}``: the job's life."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from server.api.deps import JobDep, QueryOptionsDep, ServiceDep, require_api_key
from server.intake import (
    check_options_fit_config,
    check_probe_memory,
    check_training_data_wanted,
    validate_training_data,
    validate_upload,
)
from server.jobs import JobRecord
from server.problems import ProblemError
from server.protocol import JobState
from server.schemas import PROBLEM_RESPONSE, InitializeOptions, JobError, JobLinks, JobResource
from server.settings import Settings
from server.text import without_lone_surrogates
from server.uploads import UPLOAD_REQUEST_BODY, read_upload

__all__ = ["router", "to_resource"]

router = APIRouter(
    tags=["jobs"],
    dependencies=[Depends(require_api_key)],
    responses={401: PROBLEM_RESPONSE, 404: PROBLEM_RESPONSE},
)


def to_resource(job: JobRecord) -> JobResource:
    """The API's view of a stored job, with links to its results.

    Its texts are made encodable first, so that no record can make ``GET /jobs/{id}`` fail.
    """
    job = JobRecord(**without_lone_surrogates(dataclasses.asdict(job)))
    base = f"/jobs/{job.id}"
    error = JobError(title=job.error_title, detail=job.error_detail or "") if job.error_title else None
    return JobResource(
        id=job.id,
        status=job.status,
        progress=job.progress,
        stage=job.stage,
        error=error,
        warnings=job.warnings,
        options=job.options,
        model=job.model,
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
        links=JobLinks(
            self=base,
            model=f"{base}/model",
            config=f"{base}/config",
            traces=f"{base}/traces",
            traces_csv=f"{base}/traces.csv",
            figure=f"{base}/figure",
            training_csv=f"{base}/traces.csv?table=training"
            if (job.options or {}).get("train_steps")
            else None,
        ),
    )


def _options(form_options: dict[str, Any], query: dict[str, Any], settings: Settings) -> InitializeOptions:
    """Form options overridden by query options, validated by the one options model
    and by this server's own bounds."""
    merged = {**form_options, **query}
    try:
        options = InitializeOptions(**merged)
    except ValidationError as error:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']} (received {e.get('input')!r})"
            for e in error.errors()[:10]
        )
        raise ProblemError(422, "Invalid options", detail) from None
    if options.train_steps > settings.max_train_steps:
        raise ProblemError(
            422,
            "Invalid options",
            f"train_steps: at most {settings.max_train_steps} on this server "
            f"(AUTOINIT_MAX_TRAIN_STEPS). Received: {options.train_steps}.",
        )
    return options


@router.post(
    "/initialize",
    status_code=202,
    response_model=JobResource,
    summary="Upload a model to initialize",
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
    responses={
        200: {"model": JobResource, "description": "Finished within ?wait."},
        303: {
            "description": "With 'Accept: application/octet-stream': the job "
            "succeeded within ?wait; Location is its model."
        },
        413: PROBLEM_RESPONSE,
        415: PROBLEM_RESPONSE,
        422: PROBLEM_RESPONSE,
        503: PROBLEM_RESPONSE,
    },
)
async def initialize(
    request: Request,
    response: Response,
    service: ServiceDep,
    *,
    wait: float | None = Query(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Hold the request up to this many seconds "
        "(capped at the server's limit, AUTOINIT_MAX_WAIT).",
    ),
    filename: str | None = Query(
        None, max_length=255, description="Name of a raw-body upload (e.g. model.keras)."
    ),
    query_options: QueryOptionsDep,
) -> JobResource:
    settings = service.settings
    upload = await read_upload(request, filename, settings.max_upload_bytes, settings.max_data_bytes)
    options = _options(upload.options, query_options, settings)
    try:
        if upload.training_data is not None:
            check_training_data_wanted(options, settings.max_train_steps)
        validated = await run_in_threadpool(validate_upload, upload.data, upload.filename, service.limits)
        if upload.training_data is not None:
            await run_in_threadpool(validate_training_data, upload.training_data, settings.max_data_bytes)
        check_options_fit_config(validated.config, options)
        await run_in_threadpool(check_probe_memory, validated.config, options, settings.worker_memory_budget)
    except ProblemError as error:
        service.metrics.refused.labels(str(error.status)).inc()
        raise
    job = await run_in_threadpool(service.submit, validated, options, upload.filename, upload.training_data)
    job = await service.wait(job, wait)
    response.headers["Location"] = f"/jobs/{job.id}"
    if _wants_model(request):
        return _model_answer(job)
    response.status_code = 200 if job.finished else 202
    return to_resource(job)


@router.get("/jobs/{job_id}", response_model=JobResource, summary="A job's status, progress and links")
async def get_job(job: JobDep) -> JobResource:
    return to_resource(job)


@router.delete("/jobs/{job_id}", status_code=204, summary="Delete a job and its files (cancels it if queued)")
async def delete_job(job_id: str, service: ServiceDep) -> Response:
    if not await run_in_threadpool(service.tracker.delete, job_id):
        raise ProblemError(404, "Job not found", f"No job has id {job_id!r}.")
    return Response(status_code=204)


def _wants_model(request: Request) -> bool:
    """``Accept: application/octet-stream``: the caller wants the model itself
    (``curl -L --fail -H 'Accept: application/octet-stream' ... -o model.keras``)."""
    return "application/octet-stream" in request.headers.get("accept", "").lower()


def _model_answer(job: JobRecord) -> Response:
    """For a caller that wants the model: 303 to it, or a problem that says why not.

    Never a JSON body with a 2xx status, which ``curl -o model.keras`` would
    silently save as the model.
    """
    location = {"Location": f"/jobs/{job.id}"}
    if job.status == JobState.SUCCEEDED:
        return RedirectResponse(f"/jobs/{job.id}/model", status_code=303)
    if job.status == JobState.FAILED:
        raise ProblemError(
            422,
            job.error_title or "The job failed",
            job.error_detail or "The model could not be initialized.",
            headers=location,
        )
    raise ProblemError(
        503,
        "Not finished yet",
        f"Job {job.id} is {job.status} ({job.stage}, {job.progress:.0%}) after the "
        f"wait; poll {location['Location']} or ask again with a longer ?wait.",
        headers={**location, "Retry-After": "5"},
    )
