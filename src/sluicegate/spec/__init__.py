"""The user's language: resources parsed and validated from YAML/JSON."""

from sluicegate.spec._duration import Duration, format_duration, parse_duration
from sluicegate.spec._load import load_file, parse_document
from sluicegate.spec.router import (
    AdminSpec,
    ForwardSpec,
    HealthCheckSpec,
    ListenerSpec,
    MatchSpec,
    RouterConfig,
    RuleSpec,
    StickinessSpec,
    TargetGroupSpec,
    TimeoutsSpec,
    WeightedGroup,
    parse_target,
)

__all__ = [
    "AdminSpec",
    "Duration",
    "ForwardSpec",
    "HealthCheckSpec",
    "ListenerSpec",
    "MatchSpec",
    "RouterConfig",
    "RuleSpec",
    "StickinessSpec",
    "TargetGroupSpec",
    "TimeoutsSpec",
    "WeightedGroup",
    "format_duration",
    "load_file",
    "parse_document",
    "parse_duration",
    "parse_target",
]
