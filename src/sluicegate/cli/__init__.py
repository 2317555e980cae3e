"""The ``sluice`` command line."""

from sluicegate.cli._main import main

__all__ = ["main"]
