"""The store imports only sluicegate.errors, sluicegate.clock and sluicegate._private (file
modes) from Sluicegate."""

from __future__ import annotations

import ast
from pathlib import Path

import sluicegate.store

ALLOWED = {"sluicegate.errors", "sluicegate.clock", "sluicegate._private"}


def test_store_imports_nothing_above_it() -> None:
    root = Path(sluicegate.store.__file__).parent
    bad: list[str] = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                inside = name == "sluicegate.store" or name.startswith("sluicegate.store.")
                if name.startswith("sluicegate") and not inside and name not in ALLOWED:
                    bad.append(f"{path.relative_to(root)}: {name}")
    assert bad == []


def test_migrations_ship_inside_the_package() -> None:
    root = Path(sluicegate.store.__file__).parent / "migrations"
    assert (root / "env.py").is_file()
    assert sorted(p.name for p in (root / "versions").glob("0*.py"))[0] == "0001_initial.py"
