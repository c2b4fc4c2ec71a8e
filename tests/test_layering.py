"""The package boundaries of docs/architecture.md, read from the source: a module of a package
imports only the packages it may know (at any depth, lazy imports included)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rules", "scanner", "policies", "reports", "agents")
#: package → the project packages its modules may import.
ALLOWED = {
    "rules": set(),
    "scanner": {"rules"},
    "policies": {"scanner", "rules"},
    "reports": {"scanner", "rules", "policies"},
    "agents": set(PACKAGES),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may_know(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no module found under {package}/"
    bad = [f"{f.relative_to(ROOT)}:{line} imports {mod}"
           for f in files for line, mod in _imports(f)
           if mod in PACKAGES and mod != package and mod not in ALLOWED[package]]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("def f():\n    from reports.scanlog import ScanSender\n", encoding="utf-8")
    assert (2, "reports") in _imports(mod)
