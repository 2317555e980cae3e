"""The provider: OpenFeature calls in, :class:`sluicegate.sdk.Client` evaluations out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OfErrorCode
from openfeature.exception import ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as OfReason
from openfeature.provider import AbstractProvider, Metadata

from sluicegate.flags.evaluator import ErrorCode, Reason, Resolution
from sluicegate.flags.snapshot import ServingSet
from sluicegate.sdk import Client

__all__ = ["SluicegateProvider"]


def _context(ctx: EvaluationContext | None) -> dict[str, Any]:
    if ctx is None:
        return {}
    out = dict(ctx.attributes)
    if ctx.targeting_key is not None:
        out["targetingKey"] = ctx.targeting_key
    return out


def _changed_keys(old: ServingSet | None, new: ServingSet) -> list[str]:
    new_flags = new.snapshot.document.get("flags", {})
    if old is None:
        return sorted(new_flags)
    old_flags = old.snapshot.document.get("flags", {})
    keys = set(new_flags) | set(old_flags)
    changed = {k for k in keys if new_flags.get(k) != old_flags.get(k)}
    if old.snapshot.rollout != new.snapshot.rollout:
        changed = keys  # a rollout step can change what any flag serves to someone
    return sorted(changed)


class SluicegateProvider(AbstractProvider):
    """``SluicegateProvider(url, env=None, key=None)``: ``url`` is an agent, or the server
    with ``env`` and ``key``; ``ready_timeout`` bounds how long ``initialize`` waits."""

    def __init__(
        self,
        url: str | None = None,
        env: str | None = None,
        key: str | None = None,
        *,
        client: Client | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if client is None:
            if url is None:
                raise ValueError("give the agent's (or server's) url, or a client")
            client = Client(url, env=env, key=key, start=False)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self.ready_timeout = ready_timeout
        self._last: ServingSet | None = None
        self._started = False
        client.on_change(self._on_change)

    def get_metadata(self) -> Metadata:
        return Metadata(name="sluicegate")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        if self._owns_client and not self._started:
            self._started = True
            self.client.start()
        if not self.client.wait_ready(self.ready_timeout):
            raise ProviderNotReadyError(
                f"no flag snapshot from {self.client.snapshot_url} within {self.ready_timeout:g}s"
            )
        self._last = self.client.serving

    def shutdown(self) -> None:
        if self._owns_client:
            self.client.close()

    def _on_change(self, event: str, serving: ServingSet | None) -> None:
        version = None if serving is None else serving.version
        meta: dict[str, bool | int | float | str] = {} if version is None else {"version": version}
        if event == "changed" and serving is not None:
            keys = _changed_keys(self._last, serving)
            self._last = serving
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=keys, metadata=meta)
            )
        elif event == "stale":
            self.emit_provider_stale(
                ProviderEventDetails(
                    message="lost the link to the flag source; serving the last known flags",
                    metadata=meta,
                )
            )
        elif event == "connected":
            self.emit_provider_ready(ProviderEventDetails(metadata=meta))

    # -- resolution ---------------------------------------------------------------------

    def _resolve(
        self, key: str, default: Any, kind: str, ctx: EvaluationContext | None
    ) -> FlagResolutionDetails[Any]:
        res = self.client.evaluate(key, _context(ctx), default, kind)
        return _details(res)

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, "boolean", evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, "string", evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        details = self._resolve(flag_key, default_value, "number", evaluation_context)
        value = details.value
        if details.error_code is None and not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            return FlagResolutionDetails(
                default_value,
                OfErrorCode.TYPE_MISMATCH,
                f"flag {flag_key!r} served {value!r}, not an integer",
                OfReason.ERROR,
            )
        if details.error_code is None:
            details.value = int(value)
        return details

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        details = self._resolve(flag_key, default_value, "number", evaluation_context)
        if details.error_code is None:
            details.value = float(details.value)
        return details

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, "object", evaluation_context)


def _details(res: Resolution) -> FlagResolutionDetails[Any]:
    code = None if res.error_code is None else OfErrorCode(str(res.error_code))
    if (
        res.error_code is ErrorCode.PARSE_ERROR
        and res.error_message
        and "no flag snapshot" in res.error_message
    ):
        code = OfErrorCode.PROVIDER_NOT_READY
    reason = OfReason(str(res.reason)) if res.reason in Reason else OfReason.UNKNOWN
    return FlagResolutionDetails(
        value=res.value,
        error_code=code,
        error_message=res.error_message,
        reason=reason,
        variant=res.variant,
        flag_metadata=dict(res.flag_metadata),
    )
