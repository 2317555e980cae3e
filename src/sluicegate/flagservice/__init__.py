"""The flag service: environments, versions, server-side evaluation, and rollouts.

An engine on the engines floor (beside the deployment controller): it stands on the store
and on the pure flag core (:mod:`sluicegate.flags`, whose :mod:`~sluicegate.flags.rollout`
decides what a rollout does next). It lives beside :mod:`sluicegate.flags` rather than in
it because that package is a pure core that apps import, and import-linter's layers put a
package on one floor as a whole.

    flags = FlagService(store, clock, alarms=lookup)   # lookup: the alarm engine's seam
    await flags.apply("prod", data, actor="alice", expected_version=7,
                      rollout=RolloutSpec.model_validate({"strategy": "Canary10Percent20Minutes"}))
    await flags.rollouts.tick()                         # one round; the server ticks it supervised
"""

from sluicegate.flagservice._service import ENV_NAME_PATTERN, Applied, FlagService, diff_summary
from sluicegate.flagservice.rollouts import AlarmLookup, RolloutEngine, subject_of
from sluicegate.flagservice.router_sync import FlagSink, RouterFlagSync

__all__ = [
    "ENV_NAME_PATTERN",
    "AlarmLookup",
    "Applied",
    "FlagService",
    "FlagSink",
    "RolloutEngine",
    "RouterFlagSync",
    "diff_summary",
    "subject_of",
]
