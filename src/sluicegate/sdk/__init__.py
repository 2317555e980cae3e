"""The in-process flag SDK: evaluate flags in the app, kept current by a background thread.

::

    from sluicegate.sdk import Client

    flags = Client("http://127.0.0.1:2772")           # the local agent
    flags.wait_ready(2.0)
    if flags.get_boolean("new-checkout", {"targetingKey": user_id}, False):
        ...

Imports nothing heavy (no pydantic, FastAPI, SQLAlchemy); httpx loads when the updater
thread starts. The OpenFeature provider is :mod:`sluicegate.openfeature`.
"""

from sluicegate.flags.evaluator import ErrorCode, FlagType, Reason, Resolution
from sluicegate.flags.snapshot import ServingSet, Snapshot
from sluicegate.sdk._client import Client
from sluicegate.sdk._sync import SyncLoop, SyncStatus

__all__ = [
    "Client",
    "ErrorCode",
    "FlagType",
    "Reason",
    "Resolution",
    "ServingSet",
    "Snapshot",
    "SyncLoop",
    "SyncStatus",
]
