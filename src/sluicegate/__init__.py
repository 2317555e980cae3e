"""Sluicegate: safe application delivery you run yourself."""

from sluicegate.errors import SluicegateError

__all__ = ["SluicegateError", "__version__"]

__version__ = "0.1.0"
