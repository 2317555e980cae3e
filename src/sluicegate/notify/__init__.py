"""Notifications: the event log delivered to webhooks, signed, retried, at least once.

Pure parts: :mod:`sluicegate.notify.signing` (``sign``/``verify``, usable by a receiver
written in Python) and the rules in ``_rules`` (who gets what, the retry schedule, the body).
The engine, :class:`~sluicegate.notify.webhooks.WebhookEngine`, runs beside the deployment
controller in ``sluice server``.
"""

from sluicegate.notify._rules import (
    FAILED_KIND,
    TEST_KIND,
    Outcome,
    RetryPolicy,
    after_attempt,
    body_of,
    check_subscription,
    matches,
    redact,
    wants,
)
from sluicegate.notify.signing import new_secret, sign, verify
from sluicegate.notify.webhooks import TickResult, WebhookEngine

__all__ = [
    "FAILED_KIND",
    "TEST_KIND",
    "Outcome",
    "RetryPolicy",
    "TickResult",
    "WebhookEngine",
    "after_attempt",
    "body_of",
    "check_subscription",
    "matches",
    "new_secret",
    "redact",
    "sign",
    "verify",
    "wants",
]
