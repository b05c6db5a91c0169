"""Dependencies point one way (decision 0002): composition (arbstream) → services → schemas, plumbing.

Read from the source with ``ast`` (imports inside functions count too), so a lazy import cannot
hide an arrow pointing the wrong way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("arbstream", "plumbing", "schemas", "ingest", "processors", "api")
# What each package may import from this repository (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "plumbing": set(),
    "schemas": {"plumbing"},
    "ingest": {"schemas", "plumbing"},
    "processors": {"schemas", "plumbing"},
    "api": {"processors", "schemas", "plumbing", "ingest"},
    "arbstream": {"api", "processors", "ingest", "schemas", "plumbing"},
}


def imported_packages(path: Path) -> set[str]:
    """First-party top-level packages a module imports, wherever the import statement sits."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return found


def test_the_scanner_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\ndef f():\n    from arbstream.cli import main\n    import api.main\n")
    assert imported_packages(module) == {"arbstream", "api"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_sits_below_it(package: str) -> None:
    wrong = {
        str(path.relative_to(REPO)): sorted(imported_packages(path) - ALLOWED[package] - {package})
        for path in sorted((REPO / package).rglob("*.py"))
    }
    assert {path: packages for path, packages in wrong.items() if packages} == {}
