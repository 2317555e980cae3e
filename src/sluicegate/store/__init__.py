"""Durable state of the control plane: tables, migrations, repositories.

SQLite (a file in the state dir) by default, PostgreSQL via psycopg 3; SQLAlchemy Core and
Alembic migrations shipped in the package and applied by :meth:`Store.open`. Repositories
return frozen dataclasses and raise only :mod:`sluicegate.errors`. The store imports nothing
of Sluicegate above it (no router, compute, deploy, api, cli or server).
"""

from __future__ import annotations

from ._records import (
    Alarm,
    Delivery,
    Deployment,
    DeploymentCommand,
    Event,
    ExposureReporter,
    ExposureTotal,
    FlagEnvironment,
    FlagRollout,
    FlagSetVersion,
    FlagVersionInfo,
    MetricRollup,
    Replica,
    Revision,
    Role,
    RouterState,
    Service,
    Token,
    Webhook,
)
from ._schema import DELIVERY_STATUSES, ROLES
from ._store import Store, Transaction
from .alarms import AlarmRepository, DeclaredAlarm, SyncResult
from .commands import CommandRepository
from .deployments import DeploymentRepository, new_deployment_id
from .events import EventRepository
from .exposures import ExposureRepository
from .flags import FlagRepository, FlagRolloutRepository, new_rollout_id
from .heartbeat import HeartbeatRepository
from .metric_rollups import MetricRollupRepository
from .replicas import ReplicaRepository
from .router_state import RouterStateRepository
from .services import RevisionRepository, ServiceRepository
from .tokens import TokenRepository, hash_token
from .webhooks import DeliveryRepository, WebhookRepository, new_webhook_id

__all__ = [
    "DELIVERY_STATUSES",
    "ROLES",
    "Alarm",
    "AlarmRepository",
    "CommandRepository",
    "DeclaredAlarm",
    "Delivery",
    "DeliveryRepository",
    "Deployment",
    "DeploymentCommand",
    "DeploymentRepository",
    "Event",
    "EventRepository",
    "ExposureReporter",
    "ExposureRepository",
    "ExposureTotal",
    "FlagEnvironment",
    "FlagRepository",
    "FlagRollout",
    "FlagRolloutRepository",
    "FlagSetVersion",
    "FlagVersionInfo",
    "HeartbeatRepository",
    "MetricRollup",
    "MetricRollupRepository",
    "Replica",
    "ReplicaRepository",
    "Revision",
    "RevisionRepository",
    "Role",
    "RouterState",
    "RouterStateRepository",
    "Service",
    "ServiceRepository",
    "Store",
    "SyncResult",
    "Token",
    "TokenRepository",
    "Transaction",
    "Webhook",
    "WebhookRepository",
    "hash_token",
    "new_deployment_id",
    "new_rollout_id",
    "new_webhook_id",
]
