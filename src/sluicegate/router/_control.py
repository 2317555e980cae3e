"""The router's control side: holds the effective config, runs health checks, serves the admin
API, and fans every change out to the data planes (one in-process, or N workers).

A change is validated before any plane sees it and counts as done once every plane has
applied it and reported back; a change rejected by validation leaves the last good state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    SluicegateError,
    SpecError,
    TransientError,
)
from sluicegate.router._admin_http import AdminRequest, AdminResponse, error
from sluicegate.router._exposition import prometheus_text, summarize
from sluicegate.router._flagslot import compile_document
from sluicegate.router._health import HealthChecker
from sluicegate.router._metrics import merge_snapshots
from sluicegate.router._planes import PlaneHandle
from sluicegate.spec import RouterConfig, parse_document, parse_target

__all__ = ["RouterController"]

log = logging.getLogger(__name__)
_WEIGHTS = re.compile(r"^/v1/listeners/([^/]+)/weights$")
_TARGETS = re.compile(r"^/v1/target-groups/([^/]+)/targets$")
_TARGET = re.compile(r"^/v1/target-groups/([^/]+)/targets/([^/]+)$")


class RouterController:
    def __init__(self, config: RouterConfig, planes: Sequence[PlaneHandle]) -> None:
        self.config = config
        self.planes = list(planes)
        self.health = HealthChecker(self._on_health)
        self.generation = 1
        # The flag set the planes hold, as loaded: (version, document); given to new workers.
        self.flag_document: tuple[int, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()  # one change at a time, in the order received
        self._reports: set[asyncio.Task[list[Any]]] = set()  # health flips being fanned out

    async def start(self) -> None:
        self.health.configure(self.config.target_groups, {})

    async def stop(self) -> None:
        self.health.stop()
        for task in list(self._reports):
            task.cancel()
        await asyncio.gather(*(p.stop() for p in self.planes), return_exceptions=True)

    async def check_certificates(self) -> list[str]:
        """Every plane re-reads its TLS listeners' certificate files now (SIGHUP); what was
        refused, once per distinct problem (the old certificates keep serving)."""
        async with self._lock:
            found = await self._fan("check_certificates")
        return sorted({e for errors in found for e in errors})

    def _on_health(self, group: str, target: str, healthy: bool) -> None:
        task = asyncio.get_running_loop().create_task(
            self._fan("set_health", group, target, healthy)
        )
        self._reports.add(task)  # a task nobody holds may be collected before it runs
        task.add_done_callback(self._report_done)

    def _report_done(self, task: asyncio.Task[list[Any]]) -> None:
        self._reports.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A worker that went away is restarted with the current config; the next flip
            # is pushed again. Said once here rather than lost as "never retrieved".
            log.warning(
                "could not pass a health change to every data plane: %s",
                exc,
                exc_info=not isinstance(exc, SluicegateError),
            )

    async def _fan(self, op: str, *args: Any) -> list[Any]:
        return list(await asyncio.gather(*(getattr(p, op)(*args) for p in self.planes)))

    # -- changes ---------------------------------------------------------------------------------

    async def reload(self, config: RouterConfig) -> None:
        """Put ``config`` in force on every plane, or on none (see :meth:`_prepare`)."""
        async with self._lock:
            await self._prepare(config)
            # Recorded before the commit: a worker that dies and restarts from here on is
            # started with the new config, so the planes end up agreeing either way.
            self.config = config
            self.generation += 1
            try:
                await self._fan("commit_config")
            finally:
                self.health.configure(config.target_groups, {})
            await self._push_health()

    async def check(self, config: RouterConfig) -> None:
        """Dry run of :meth:`reload`: every plane opens the ports ``config`` would need and
        lets go of them again. Raises what the reload would; changes nothing."""
        async with self._lock:
            await self._prepare(config)
            await self._fan("abort_config")

    async def _prepare(self, config: RouterConfig) -> None:
        """Phase one of a change on every plane: each opens the new ports it would need.

        Two phases rather than putting planes back: if any plane refuses (a port another
        program holds) or does not answer, every plane closes what it opened and the first
        refusal is raised (a SpecError at ``listeners[i].port``), so no plane runs a config
        the others do not. Only after every plane holds its sockets does the commit, which
        cannot fail on a port, go out.
        """
        results = await asyncio.gather(
            *(p.prepare_config(config) for p in self.planes), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(p.abort_config() for p in self.planes), return_exceptions=True)
            raise next((f for f in failures if isinstance(f, SpecError)), failures[0])

    async def _push_health(self) -> None:
        """Push the health known for surviving targets again: a plane may have (re)created
        them as healthy, and a flip reported before the change may have found them missing.

        The checker adds and drops states while this awaits, so it works on a copy. Every
        value is read before any call is sent, so a flip reported meanwhile lands last.
        """
        known = list(self.health.states.items())
        await asyncio.gather(
            *(
                self._fan("set_health", group, target, state.healthy)
                for (group, target), state in known
            )
        )

    async def set_weights(
        self, listener: str, weights: Mapping[str, int], rule: int | None
    ) -> dict[str, int]:
        async with self._lock:
            results = await self._fan("set_weights", listener, weights, rule)
            applied: dict[str, int] = results[0]
            if any(r != applied for r in results):
                raise TransientError("workers disagree on the weights; retry the call")
            self.config = _with_weights(self.config, listener, applied, rule)
            self.generation += 1
            log.info(
                "weights of %s%s set to %s",
                listener,
                "" if rule is None else f" rule {rule}",
                applied,
            )
            return applied

    async def set_flags(self, version: int, document: dict[str, Any]) -> list[str]:
        """Validate by compiling, then load into every plane; returns the flag keys. A bad
        set raises SpecError before any plane sees it."""
        keys = compile_document(version, document).keys()
        async with self._lock:
            await self._fan("set_flags", version, document)
            self.flag_document = (version, document)
            log.info("flag set version %d loaded (%d flags)", version, len(keys))
            return keys

    async def register(self, group: str, target: str) -> None:
        async with self._lock:
            parse_target(target)
            await self._fan("register", group, target)
            self.config = _with_targets(self.config, group, add=target)
            self.generation += 1
            self.health.configure(self.config.target_groups, {})

    async def deregister(self, group: str, target: str, delay: float | None) -> float:
        async with self._lock:
            spec = self.config.target_group(group)
            if spec is None:
                raise NotFoundError(f"no target group named {group!r}")
            await self._fan("deregister", group, target, delay)
            self.config = _with_targets(self.config, group, remove=target)
            self.generation += 1
            self.health.configure(self.config.target_groups, {})
            return spec.deregistration_delay if delay is None else delay

    # -- reads -------------------------------------------------------------------------------

    async def snapshot(self, window: int) -> dict[str, Any]:
        return merge_snapshots(await self._fan("metrics", window))

    async def status(self) -> dict[str, Any]:
        """Merged status: in-flight and connections summed over the planes."""
        statuses = await self._fan("status")
        merged: dict[str, Any] = json.loads(json.dumps(statuses[0]))
        for other in statuses[1:]:
            merged["clients"] += other["clients"]
            for gname, g in other["groups"].items():
                mine = merged["groups"].get(gname)
                if mine is None:
                    continue
                for addr, t in g["targets"].items():
                    if addr in mine["targets"]:
                        for k in ("in_flight", "connections", "idle"):
                            mine["targets"][addr][k] += t[k]
        for gname, g in merged["groups"].items():
            for addr, t in g["targets"].items():
                state = self.health.states.get((gname, addr))
                t["last_check_error"] = state.last_error if state else ""
                t["checks_skipped"] = state.skipped if state else 0
        for other in statuses[1:]:
            for k, v in other["flags"]["unmatched"].items():
                merged["flags"]["unmatched"][k] += v
        merged["workers"] = len(self.planes)
        merged["generation"] = self.generation
        return merged

    # -- the admin API ---------------------------------------------------------------------------

    async def handle(self, req: AdminRequest) -> AdminResponse:
        try:
            return await self._route(req)
        except SpecError as exc:
            return error(
                422,
                "invalid input",
                problems=[{"path": p.path, "message": p.message} for p in exc.problems],
            )
        except json.JSONDecodeError as exc:
            return error(400, f"body is not valid JSON: {exc.msg} at position {exc.pos}")
        except UnicodeDecodeError as exc:
            return error(400, f"body is not valid JSON: not UTF-8 at position {exc.start}")
        except NotFoundError as exc:
            return error(404, str(exc))
        except ConflictError as exc:
            return error(409, str(exc))
        except TransientError as exc:
            return error(503, str(exc))
        except SluicegateError as exc:
            return error(400, str(exc))

    async def _route(self, req: AdminRequest) -> AdminResponse:
        m, path = req.method, req.path.rstrip("/") or "/"
        if path == "/healthz" and m == "GET":
            return AdminResponse(200, {"status": "ok", "generation": self.generation})
        if path == "/metrics" and m == "GET":
            text = prometheus_text(await self.snapshot(0), await self.status())
            return AdminResponse(200, text, "text/plain; version=0.0.4; charset=utf-8")
        if path == "/v1/metrics" and m == "GET":
            window = _int_arg(req, "window", 60, 1, int(self.config.metrics_window))
            hist = req.query.get("hist", ["0"])[0] in ("1", "true")
            listener = req.query.get("listener", [None])[0] or None
            include_open = req.query.get("open", ["0"])[0] in ("1", "true")
            return AdminResponse(
                200, summarize(await self.snapshot(window), window, hist, listener, include_open)
            )
        if path == "/v1/config":
            if m == "GET":
                return AdminResponse(
                    200,
                    {"generation": self.generation, "config": self.config.model_dump(mode="json")},
                )
            if m == "PUT":
                dry_run = _bool_arg(req, "dry_run")
                body = req.json()
                config = parse_document(
                    RouterConfig,
                    body.get("config", body) if isinstance(body, dict) else body,
                    "request body",
                )
                if dry_run:
                    await self.check(config)
                    return AdminResponse(200, {"valid": True, "generation": self.generation})
                await self.reload(config)
                return AdminResponse(200, {"generation": self.generation})
        if path == "/v1/flags":
            if m == "GET":
                return AdminResponse(200, (await self.status())["flags"])
            if m == "PUT":
                version, document = _flags_body(req.json())
                keys = await self.set_flags(version, document)
                return AdminResponse(200, {"version": version, "flags": keys})
        if path == "/v1/status" and m == "GET":
            return AdminResponse(200, await self.status())
        if path == "/v1/target-groups" and m == "GET":
            return AdminResponse(200, (await self.status())["groups"])
        if path == "/v1/listeners" and m == "GET":
            return AdminResponse(200, (await self.status())["listeners"])
        if match := _WEIGHTS.match(path):
            listener = match.group(1)
            if m == "GET":
                status = (await self.status())["listeners"]
                if listener not in status:
                    raise NotFoundError(f"no listener named {listener!r}")
                return AdminResponse(200, {"listener": listener, **status[listener]})
            if m == "PUT":
                weights, rule = _weights_body(req.json())
                applied = await self.set_weights(listener, weights, rule)
                return AdminResponse(
                    200,
                    {
                        "listener": listener,
                        "rule": rule,
                        "weights": applied,
                        "generation": self.generation,
                    },
                )
        if (match := _TARGETS.match(path)) and m == "POST":
            body = req.json()
            if not isinstance(body, dict) or not isinstance(body.get("target"), str):
                raise SpecError([Problem("target", 'expected {"target": "host:port"}')])
            try:
                await self.register(match.group(1), body["target"])
            except ValueError as exc:
                raise SpecError([Problem("target", str(exc))]) from exc
            return AdminResponse(
                201,
                {"target_group": match.group(1), "target": body["target"], "state": "registered"},
            )
        if (match := _TARGET.match(path)) and m == "DELETE":
            delay = _delay_arg(req)
            used = await self.deregister(match.group(1), match.group(2), delay)
            return AdminResponse(
                202,
                {
                    "target_group": match.group(1),
                    "target": match.group(2),
                    "state": "draining",
                    "deregistration_delay": used,
                },
            )
        return error(
            404 if m in ("GET", "PUT", "POST", "DELETE") else 405, f"no route for {m} {req.path}"
        )


def _int_arg(req: AdminRequest, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.query.get(name)
    if not raw:
        return default
    if not raw[0].isascii() or not raw[0].isdigit() or not lo <= int(raw[0]) <= hi:
        raise SpecError([Problem(name, f"must be a whole number from {lo} to {hi}")])
    return int(raw[0])


def _bool_arg(req: AdminRequest, name: str) -> bool:
    """``?name``, ``?name=1|true`` or ``?name=0|false``; anything else is refused (a typo
    must not turn a dry run into a real change)."""
    raw = req.query.get(name)
    if raw is None:
        return False
    if raw[0].lower() not in ("", "1", "true", "0", "false"):
        raise SpecError([Problem(name, f"must be 1, true, 0 or false; got {raw[0]!r}")])
    return raw[0].lower() in ("", "1", "true")


def _delay_arg(req: AdminRequest) -> float | None:
    raw = req.query.get("delay")
    if not raw:
        return None
    try:
        delay = float(raw[0])
    except ValueError:
        delay = math.nan
    if not 0 <= delay < math.inf:
        raise SpecError(
            [Problem("delay", f"must be a number of seconds, 0 or more; got {raw[0]!r}")]
        )
    return delay


def _flags_body(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict):
        raise SpecError([Problem("", 'expected {"version": N, "document": {...}}')])
    problems = []
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        problems.append(Problem("version", "version must be a whole number, 0 or more"))
    document = body.get("document")
    if not isinstance(document, dict):
        problems.append(Problem("document", "document must be a flag-set object"))
    if problems:
        raise SpecError(problems)
    assert isinstance(version, int) and isinstance(document, dict)
    return version, document


def _weights_body(body: Any) -> tuple[dict[str, int], int | None]:
    if not isinstance(body, dict) or not isinstance(body.get("weights"), dict):
        raise SpecError([Problem("weights", 'expected {"weights": {"<group>": <int>, ...}}')])
    weights: dict[str, int] = {}
    for name, w in body["weights"].items():
        if not isinstance(w, int) or isinstance(w, bool):
            raise SpecError([Problem(f"weights.{name}", "weight must be a whole number")])
        weights[name] = w
    rule = body.get("rule")
    if rule is not None and (not isinstance(rule, int) or isinstance(rule, bool)):
        raise SpecError([Problem("rule", "rule must be a rule index or null")])
    return weights, rule


def _with_weights(
    config: RouterConfig, listener: str, weights: Mapping[str, int], rule: int | None
) -> RouterConfig:
    data = config.model_dump(mode="json")
    for lst in data["listeners"]:
        if lst["name"] == listener:
            action = lst["default"] if rule is None else lst["rules"][rule]
            for wg in action["forward"]:
                wg["weight"] = weights.get(wg["target_group"], wg["weight"])
    return RouterConfig.model_validate(data)


def _with_targets(
    config: RouterConfig, group: str, add: str | None = None, remove: str | None = None
) -> RouterConfig:
    data = config.model_dump(mode="json")
    for g in data["target_groups"]:
        if g["name"] == group:
            if add is not None and add not in g["targets"]:
                g["targets"].append(add)
            if remove is not None and remove in g["targets"]:
                g["targets"].remove(remove)
    return RouterConfig.model_validate(data)
