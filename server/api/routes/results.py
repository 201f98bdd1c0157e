"""A finished job's files: the model, its config, the traces and the figure."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from server.api.deps import JobDep, ServiceDep, require_api_key
from server.jobs import JobRecord
from server.problems import ProblemError
from server.protocol import JobState
from server.schemas import PROBLEM_RESPONSE
from server.service import Service

__all__ = ["router"]

router = APIRouter(
    tags=["results"],
    dependencies=[Depends(require_api_key)],
    responses={401: PROBLEM_RESPONSE, 404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
)


async def _artifact(service: Service, job: JobRecord, name: str) -> tuple[Path | None, bytes | None]:
    """A succeeded job's file: its local path, or its bytes from a remote store."""
    if job.status != JobState.SUCCEEDED:
        reason = (
            f"it failed: {job.error_title}. {job.error_detail}"
            if job.status == JobState.FAILED
            else f"it is {job.status} ({job.stage}, {job.progress:.0%}); "
            f"poll the job until its status is '{JobState.SUCCEEDED}'"
        )
        raise ProblemError(409, "Job has no results", f"Job {job.id} has no {name}: {reason}")
    path = service.artifacts.local_path(job.id, name)
    if path is not None and path.is_file():
        return path, None
    data = await run_in_threadpool(service.artifacts.get_bytes, job.id, name)
    if data is None:
        raise ProblemError(
            404, "Result missing", f"Job {job.id} has no {name} in the artifact store (it may have expired)."
        )
    return None, data


async def _traces(service: Service, job: JobRecord) -> dict:
    path, data = await _artifact(service, job, "traces.json")
    return json.loads(path.read_bytes() if path is not None else data)


def _file_answer(
    path: Path | None, data: bytes | None, media_type: str, download: str | None = None
) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{download}"'} if download else None
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


@router.get(
    "/jobs/{job_id}/model",
    response_class=Response,
    summary="The initialized model (.keras archive)",
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def get_model(job: JobDep, service: ServiceDep) -> Response:
    path, data = await _artifact(service, job, "model.keras")
    stem = "".join(c for c in str(job.model.get("name") or "model") if c.isalnum() or c in "-_")
    return _file_answer(path, data, "application/octet-stream", f"{stem or 'model'}-autoinit.keras")


@router.get(
    "/jobs/{job_id}/config",
    response_class=Response,
    summary="The initialized model's config (Keras JSON)",
    responses={200: {"content": {"application/json": {}}}},
)
async def get_config(job: JobDep, service: ServiceDep) -> Response:
    path, data = await _artifact(service, job, "config.json")
    return _file_answer(path, data, "application/json")


#: The CSV tables of a job's traces: one row per layer, or one row per training step.
CSV_TABLES = ("layers", "training")
_TABLE_QUERY = Query(
    "layers",
    pattern=f"^({'|'.join(CSV_TABLES)})$",
    description="With CSV: 'layers' (one row per layer) or 'training' (one row per training "
    "step: step, <initialization>_loss, <initialization>_grad_norm; the last row, "
    "'diverged_at', holds the step each copy diverged at). 404 when the job did not train.",
)


@router.get(
    "/jobs/{job_id}/traces",
    response_class=Response,
    summary="Per-layer signal traces (JSON, or CSV with ?format=csv; training steps with &table=training)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 422: PROBLEM_RESPONSE},
)
async def get_traces(
    job: JobDep,
    service: ServiceDep,
    format: str = Query("json", pattern="^(json|csv)$"),
    table: str = _TABLE_QUERY,
) -> Response:
    if format == "csv":
        return await get_traces_csv(job, service, table)
    if table != "layers":
        raise ProblemError(
            422,
            "Invalid query",
            f"table={table} selects a CSV table; ask with format=csv. "
            "The JSON traces hold every table (the training under 'training').",
        )
    path, data = await _artifact(service, job, "traces.json")
    return _file_answer(path, data, "application/json")


@router.get(
    "/jobs/{job_id}/traces.csv",
    response_class=Response,
    summary="Per-layer signal traces as CSV (training steps with ?table=training)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_traces_csv(job: JobDep, service: ServiceDep, table: str = _TABLE_QUERY) -> Response:
    from autoinit.plot import traces_to_csv, training_to_csv

    traces = await _traces(service, job)
    if table == "training":
        training = traces.get("training")
        if training is None:
            raise ProblemError(
                404,
                "Job has no training",
                f"Job {job.id} did not train (train_steps={job.options.get('train_steps', 0)}): "
                "its traces have no training to export. Submit the model with train_steps > 0 "
                "for loss and gradient-norm curves.",
            )
        text, name = training_to_csv(training), f"{job.id}-training.csv"
    else:
        text, name = traces_to_csv(traces), f"{job.id}-traces.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/jobs/{job_id}/figure",
    response_class=Response,
    summary="Plotly figure JSON of the traces (what the page draws)",
    responses={200: {"content": {"application/json": {}}}},
)
async def get_figure(
    job: JobDep,
    service: ServiceDep,
    log: bool = Query(True, description="Log y axis for the variance panel."),
    dark: bool = Query(False, description="Dark template (the page follows the OS setting)."),
    gradients: bool = Query(False, description="Add the gradient-variance panel, if probed."),
    view: str = Query(
        "all",
        max_length=300,
        description="'all' layers, the residual 'stream' of a model built from blocks (a transformer), "
        "or 'block:<name>' for one block's inside (the page's Show select).",
    ),
) -> Response:
    from autoinit.plot import figure_json
    from autoinit.plot.blocks import view_layers

    traces = await _traces(service, job)
    try:
        view_layers(traces.get("layers", []), view)
    except ValueError as error:
        raise ProblemError(422, "Unknown figure view", str(error)) from None
    text = await run_in_threadpool(
        lambda: figure_json(traces, log_y=log, dark=dark, show_gradients=gradients, view=view)
    )
    return Response(text, media_type="application/json")
