"""What the static page needs besides its files: Plotly, and a link per job.

Not in the OpenAPI schema. `server.app.create_app` mounts the page's folder
at ``/`` after these routes, or sends ``/`` to ``/docs`` when there is none.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from server.problems import ProblemError

__all__ = ["docs_redirect", "plotly_js_path", "router"]

router = APIRouter(include_in_schema=False)


@cache
def plotly_js_path() -> Path | None:
    """plotly.js as shipped in the ``plotly`` package, if installed."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


@router.get("/static/plotly.min.js")
def plotly_min_js() -> FileResponse:
    path = plotly_js_path()
    if path is None:
        raise ProblemError(404, "Not Found", "plotly is not installed on this server.")
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/jobs/{job_id}/view")
def view_job(job_id: str) -> RedirectResponse:
    # Relative, so a path prefix in front of the service survives.
    return RedirectResponse(f"../../#job={quote(job_id, safe='')}")


def docs_redirect() -> RedirectResponse:
    """``/`` when no page is served: the API's docs."""
    return RedirectResponse("/docs")
