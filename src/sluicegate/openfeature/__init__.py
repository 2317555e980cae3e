"""An OpenFeature provider for Sluicegate (needs the optional ``openfeature-sdk`` package).

::

    from openfeature import api
    from sluicegate.openfeature import SluicegateProvider

    api.set_provider(SluicegateProvider("http://127.0.0.1:2772"))   # the local agent
    api.get_client().get_boolean_value("new-checkout", False, ctx)

It evaluates in-process with :class:`sluicegate.sdk.Client` (the same evaluator as the
agent) and emits PROVIDER_READY, PROVIDER_CONFIGURATION_CHANGED (with the changed flag
keys) and PROVIDER_STALE. Apps that prefer remote evaluation can use OpenFeature's OFREP
provider against the agent instead.
"""

from sluicegate.openfeature._provider import SluicegateProvider

__all__ = ["SluicegateProvider"]
