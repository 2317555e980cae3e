"""Sluicegate: safe application delivery you run yourself."""

from sluicegate.errors import SluicegateError

__all__ = ["SluicegateError", "__version__"]

# The one place the version is written: pyproject.toml reads it from here (dynamic).
__version__ = "0.1.0"
