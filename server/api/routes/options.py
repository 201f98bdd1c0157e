"""``GET /options``: the options ``POST /initialize`` takes, with their defaults.

The page reads its defaults here, so they are written once, in
`autoinit.options.InitializeOptions`; the schema also carries this server's
own, tighter bounds (``AUTOINIT_MAX_TRAIN_STEPS``). Open like ``/healthz``:
nothing in it is secret.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import SettingsDep
from server.schemas import InitializeOptions, OptionsInfo

__all__ = ["router"]

router = APIRouter(tags=["options"])


@router.get(
    "/options", response_model=OptionsInfo, summary="The initialization options: defaults and JSON schema"
)
def get_options(settings: SettingsDep) -> OptionsInfo:
    schema = InitializeOptions.model_json_schema()
    train_steps = schema["properties"].get("train_steps")
    if train_steps is not None:
        train_steps["maximum"] = min(
            train_steps.get("maximum", settings.max_train_steps), settings.max_train_steps
        )
    return OptionsInfo(defaults=InitializeOptions(), json_schema=schema)
