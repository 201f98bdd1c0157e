"""The page's example gallery on disk (frontend/examples/) and the script that
writes it (scripts/export_examples.py), for the tests that check they agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "frontend" / "examples"


def exporter() -> ModuleType:
    """scripts/export_examples.py, imported from its file (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location("export_examples", REPO / "scripts" / "export_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
