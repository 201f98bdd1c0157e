"""``GET /options``: the options ``POST /initialize`` takes, with their defaults.

The page reads its defaults here, so they are written once, in
`autoinit.options.InitializeOptions`. Open like ``/healthz``: nothing in it is secret.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.schemas import InitializeOptions, OptionsInfo

__all__ = ["router"]

router = APIRouter(tags=["options"])


@router.get(
    "/options", response_model=OptionsInfo, summary="The initialization options: defaults and JSON schema"
)
def get_options() -> OptionsInfo:
    return OptionsInfo(defaults=InitializeOptions(), json_schema=InitializeOptions.model_json_schema())
