"""Write the page's example gallery: frontend/examples/<name>.json for every zoo model.

The page uploads these files exactly as a user would upload their own config,
so the examples go through the same validation as any upload. Run after
changing `autoinit.zoo`; `tests/test_frontend_examples.py` fails when the
committed files no longer match what the zoo builds. The small keras_hub
backbones (`autoinit.zoo.HUB_ZOO`) are listed apart, in ``hub.json``, and
written only where keras-hub is installed.

    .venv/bin/python scripts/export_examples.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "frontend" / "examples"


def example_config(name: str) -> dict:
    """The config the page offers for zoo model ``name`` (``model.to_json()``)."""
    from autoinit import zoo

    return json.loads(zoo.build(name).to_json())


def index_entries() -> list[dict]:
    """``index.json``: the zoo catalogue plus each example's file name."""
    from autoinit import zoo

    return [{**entry, "file": f"{entry['name']}.json"} for entry in zoo.list_models()]


def hub_example_config(name: str) -> dict:
    """The config the page offers for keras_hub example ``name``."""
    from autoinit import zoo

    return json.loads(zoo.build_hub(name).to_json())


def hub_index_entries() -> list[dict]:
    """``hub.json``: the keras_hub examples plus each one's file name (none without keras_hub)."""
    from autoinit import zoo

    return [{**entry, "file": f"{entry['name']}.json"} for entry in zoo.list_hub_models()]


def _write(out: Path, index: str, entries: list[dict], config) -> None:
    for entry in entries:
        (out / entry["file"]).write_text(json.dumps(config(entry["name"])) + "\n")
        print(f"wrote {out / entry['file']}", file=sys.stderr)
    (out / index).write_text(json.dumps(entries, indent=1) + "\n")


def main(out: Path = EXAMPLES_DIR) -> int:
    from autoinit import zoo

    out.mkdir(parents=True, exist_ok=True)
    _write(out, "index.json", index_entries(), example_config)
    if zoo.hub_available():
        _write(out, "hub.json", hub_index_entries(), hub_example_config)
    else:
        print("keras-hub is not installed: hub.json and its examples left as they are", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
