"""The data plane: an HTTP/1.1 reverse proxy with weighted target groups, stickiness, health
checks, live reconfiguration and per-second metrics (the ALB of Sluicegate).

Run it with :func:`run_router` (blocking, what ``sluice router`` does) or
:func:`serve_router` inside an existing event loop.
"""

from sluicegate.router._dataplane import DataPlane
from sluicegate.router._histogram import bucket_bounds, bucket_index, percentile
from sluicegate.router._metrics import Counts, MetricsRegistry, Series, SeriesKey
from sluicegate.router._run import RouterSettings, run_router, serve_router
from sluicegate.router._sticky import StickyCodec
from sluicegate.router._tls import check_listener_certificates
from sluicegate.router.client import RouterClient

__all__ = [
    "Counts",
    "DataPlane",
    "MetricsRegistry",
    "RouterClient",
    "RouterSettings",
    "Series",
    "SeriesKey",
    "StickyCodec",
    "bucket_bounds",
    "bucket_index",
    "check_listener_certificates",
    "percentile",
    "run_router",
    "serve_router",
]
