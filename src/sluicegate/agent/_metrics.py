"""The agent's Prometheus metrics, kept as plain counters (no lock: one event loop)."""

from __future__ import annotations

__all__ = ["AgentMetrics"]

UNKNOWN_FLAG = "(unknown)"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class AgentMetrics:
    """Evaluations by flag and variant (errors count under variant ``""`` and their
    error code), snapshots accepted and rejected."""

    def __init__(self) -> None:
        self.evaluations: dict[tuple[str, str], int] = {}
        self.accepted = 0
        self.rejected = 0

    def count(self, flag: str, variant: str) -> None:
        key = (flag, variant)
        evaluations = self.evaluations
        evaluations[key] = evaluations.get(key, 0) + 1

    def render(
        self, version: int | None, sync_age: float | None, connected: bool, stale: bool
    ) -> str:
        lines = [
            "# HELP sluicegate_agent_flag_set_version Version of the flag set served.",
            "# TYPE sluicegate_agent_flag_set_version gauge",
            f"sluicegate_agent_flag_set_version {-1 if version is None else version}",
            "# HELP sluicegate_agent_sync_age_seconds Seconds since the server was last heard.",
            "# TYPE sluicegate_agent_sync_age_seconds gauge",
            f"sluicegate_agent_sync_age_seconds {-1 if sync_age is None else round(sync_age, 3)}",
            "# HELP sluicegate_agent_connected 1 while the sync link to the server is up.",
            "# TYPE sluicegate_agent_connected gauge",
            f"sluicegate_agent_connected {int(connected)}",
            "# HELP sluicegate_agent_stale 1 while the served flags may be out of date.",
            "# TYPE sluicegate_agent_stale gauge",
            f"sluicegate_agent_stale {int(stale)}",
            "# HELP sluicegate_agent_snapshots_total Snapshots received, by outcome.",
            "# TYPE sluicegate_agent_snapshots_total counter",
            f'sluicegate_agent_snapshots_total{{outcome="accepted"}} {self.accepted}',
            f'sluicegate_agent_snapshots_total{{outcome="rejected"}} {self.rejected}',
            "# HELP sluicegate_agent_evaluations_total Flag evaluations served.",
            "# TYPE sluicegate_agent_evaluations_total counter",
        ]
        for (flag, variant), n in sorted(self.evaluations.items()):
            lines.append(
                f'sluicegate_agent_evaluations_total{{flag="{_label(flag)}",'
                f'variant="{_label(variant)}"}} {n}'
            )
        return "\n".join(lines) + "\n"
