"""The version is written once (sluicegate.__version__); the package metadata reads it."""

from __future__ import annotations

import importlib.metadata
import tomllib

import sluicegate
from tests._support import REPO_ROOT


def test_the_installed_metadata_has_the_version_of_the_package() -> None:
    assert importlib.metadata.version("sluicegate") == sluicegate.__version__


def test_pyproject_reads_the_version_instead_of_writing_it_again() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sluicegate.__version__"}
