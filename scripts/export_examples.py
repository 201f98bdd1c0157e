"""Write the page's example gallery: frontend/examples/<name>.json for every zoo model.

The page uploads these files exactly as a user would upload their own config,
so the examples go through the same validation as any upload. Run after
changing `autoinit.zoo`; `tests/test_frontend_examples.py` fails when the
committed files no longer match what the zoo builds.

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


def main(out: Path = EXAMPLES_DIR) -> int:
    out.mkdir(parents=True, exist_ok=True)
    entries = index_entries()
    for entry in entries:
        (out / entry["file"]).write_text(json.dumps(example_config(entry["name"])) + "\n")
        print(f"wrote {out / entry['file']}", file=sys.stderr)
    (out / "index.json").write_text(json.dumps(entries, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
