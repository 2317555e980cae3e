"""Notifications: the event log delivered to webhooks, signed, retried, at least once.

Pure parts: :mod:`sluicegate.notify.signing` (``sign``/``verify``, usable by a receiver
written in Python), the rules in ``_rules`` (who gets what, the retry schedule, the body)
and ``_kinds``, the one list of event kinds a webhook's patterns are checked against.
The engine, :class:`~sluicegate.notify.webhooks.WebhookEngine`, runs beside the deployment
controller in ``sluice server``.
"""

from sluicegate.notify._kinds import EVENT_FAMILIES, EVENT_KINDS, pattern_problem
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
from sluicegate.notify._targets import check_target
from sluicegate.notify.signing import new_secret, sign, verify
from sluicegate.notify.webhooks import TickResult, WebhookEngine

__all__ = [
    "EVENT_FAMILIES",
    "EVENT_KINDS",
    "FAILED_KIND",
    "TEST_KIND",
    "Outcome",
    "RetryPolicy",
    "TickResult",
    "WebhookEngine",
    "after_attempt",
    "body_of",
    "check_subscription",
    "check_target",
    "matches",
    "new_secret",
    "pattern_problem",
    "redact",
    "sign",
    "verify",
    "wants",
]
