"""docs/ARCHITECTURE.md lists every module of the library and the service, so a
newcomer finds the room a change belongs in."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    found = []
    for package in ("autoinit", "server"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name != "__init__.py":
                found.append(path.relative_to(REPO).as_posix())
    return found


def test_every_module_is_named_in_the_architecture_doc():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    missing = []
    for module in _modules():
        package, _, rest = module.partition("/")
        # A row names a module by its path below its package (`upload/params.py`)
        # or, inside a package's row, by its file name alone (`params.py`).
        if f"`{rest}`" not in doc and f"`{Path(rest).name}`" not in doc:
            missing.append(module)
    assert not missing, f"docs/ARCHITECTURE.md does not name: {missing}"
