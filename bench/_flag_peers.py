"""Workers of bench/flag_eval.py: one SDK per process, the same workload, JSON on stdout.

Run by flag_eval.py as ``PYTHON bench/_flag_peers.py NAME REPS N``: Sluicegate and the
python baseline with the project's venv, the peer SDKs with bench/.venv-peers (they are not
project dependencies). Every SDK is fully offline: nothing listens, nothing is contacted.
Imports only the standard library at the top, since it runs in either venv.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

USERS = [f"user-{i:05d}" for i in range(10_000)]
GROUP = USERS[::100]  # the 100 listed users ("FlagGroup")
RULE, STATIC = "new-checkout", "simple"
WARMUP = 2_000

Loop = Callable[[list[Any]], None]


def timed(loop: Loop, items: list[Any], reps: int, n: int) -> dict[str, Any]:
    """evals/s by thread CPU time (primary: the machine is shared) and by wall time."""
    seq = (items * (n // len(items) + 1))[:n]
    loop(seq[:WARMUP])
    cpu, wall = [], []
    for _ in range(reps):
        gc.collect()
        c0, w0 = time.thread_time(), time.perf_counter()
        loop(seq)
        c1, w1 = time.thread_time(), time.perf_counter()
        cpu.append(n / max(c1 - c0, 1e-9))
        wall.append(n / max(w1 - w0, 1e-9))
    return {
        "cpu": cpu,
        "wall": wall,
        "median_cpu": statistics.median(cpu),
        "median_wall": statistics.median(wall),
    }


# --- each SDK: (version, prebuilt loop maker, ctx+eval loop maker, decide) ---------------------


def sluicegate(variant: str) -> dict[str, Any]:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    import sluicegate as sg
    from sluicegate.flags import validate_flag_set

    ids = list(GROUP)
    if variant == "segment100k":
        ids += [f"other-{i:06d}" for i in range(100_000 - len(ids))]
    doc = {
        "segments": {"group": {"ids": ids}},
        "flags": {
            RULE: {
                "type": "boolean",
                "rules": [{"when": {"segment": "group"}, "variant": "on"}],
                "fallthrough": {
                    "split": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}]
                },
            },
            STATIC: {"type": "boolean", "default_variant": "on"},
        },
    }
    flags: Any = validate_flag_set(doc).compile()
    ctxs = [{"targetingKey": u} for u in USERS]
    sdk_mode = variant.startswith("sdk")
    if sdk_mode:
        # The in-process SDK as an app uses it: a Client holding a snapshot, handed over
        # the way its sync thread hands one over (no network in the timed loop).
        from sluicegate.flags.snapshot import Snapshot, snapshot_etag
        from sluicegate.sdk import Client

        client = Client("http://127.0.0.1:9", start=False)
        snapshot = Snapshot(
            "prod",
            1,
            snapshot_etag(1),
            validate_flag_set(doc).model_dump(mode="json", exclude_none=True),
        )
        if not client._accept(snapshot.to_json()):
            raise SystemExit("the SDK refused the bench snapshot")
        flags = client
        variant = variant.removeprefix("sdk").lstrip(":")

    if variant == "get_boolean":

        def make(key: str) -> tuple[Loop, Loop]:
            get = flags.get_boolean

            def pre(seq: list[Any]) -> None:
                for c in seq:
                    get(key, c, False)

            def ctx(seq: list[Any]) -> None:
                for u in seq:
                    get(key, {"targetingKey": u}, False)

            return pre, ctx
    else:

        def make(key: str) -> tuple[Loop, Loop]:
            ev = flags.evaluate

            def pre(seq: list[Any]) -> None:
                for c in seq:
                    ev(key, c)

            def ctx(seq: list[Any]) -> None:
                for u in seq:
                    ev(key, {"targetingKey": u})

            return pre, ctx

    def decide(key: str, user: str) -> bool:
        return bool(flags.evaluate(key, {"targetingKey": user}, False).value)

    return {"version": sg.__version__, "make": make, "ctxs": ctxs, "decide": decide}


def baseline(_: str) -> dict[str, Any]:
    import mmh3

    group = frozenset(GROUP)
    table = {RULE: True, STATIC: True}

    def make(key: str) -> tuple[Loop, Loop]:
        h = mmh3.hash
        if key == STATIC:

            def pre(seq: list[Any]) -> None:
                for _u in seq:
                    table[key]
        else:

            def pre(seq: list[Any]) -> None:
                for u in seq:
                    table[key] and (u in group or h(key + ":" + u, 0, False) % 100 < 25)

        return pre, pre

    def decide(key: str, user: str) -> bool:
        return key == STATIC or user in group or mmh3.hash(key + ":" + user, 0, False) % 100 < 25

    return {
        "version": "mmh3 " + mmh3.__version__ if hasattr(mmh3, "__version__") else "",
        "make": make,
        "ctxs": USERS,
        "decide": decide,
    }


def growthbook(_: str) -> dict[str, Any]:
    from importlib.metadata import version

    from growthbook import GrowthBook

    features = {
        RULE: {
            "defaultValue": False,
            "rules": [
                {"condition": {"id": {"$in": GROUP}}, "force": True},
                {"force": True, "coverage": 0.25, "hashAttribute": "id", "hashVersion": 2},
            ],
        },
        STATIC: {"defaultValue": True},
    }
    gb = GrowthBook(attributes={}, features=features)

    def make(key: str) -> tuple[Loop, Loop]:
        def pre(seq: list[Any]) -> None:
            for a in seq:
                gb.set_attributes(a)
                gb.is_on(key)

        def ctx(seq: list[Any]) -> None:
            for u in seq:
                gb.set_attributes({"id": u})
                gb.is_on(key)

        return pre, ctx

    def decide(key: str, user: str) -> bool:
        gb.set_attributes({"id": user})
        return bool(gb.is_on(key))

    return {
        "version": version("growthbook"),
        "make": make,
        "ctxs": [{"id": u} for u in USERS],
        "decide": decide,
    }


def launchdarkly(_: str) -> dict[str, Any]:
    from importlib.metadata import version

    from ldclient import Context
    from ldclient.client import LDClient
    from ldclient.config import Config
    from ldclient.integrations import Files

    flag = {
        "key": RULE,
        "on": True,
        "version": 1,
        "salt": "bench",
        "prerequisites": [],
        "targets": [{"values": GROUP, "variation": 0}],
        "contextTargets": [],
        "rules": [],
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": 0, "weight": 25_000},
                    {"variation": 1, "weight": 75_000},
                ]
            }
        },
        "offVariation": 1,
        "variations": [True, False],
    }
    simple = {
        "key": STATIC,
        "on": True,
        "version": 1,
        "salt": "s",
        "prerequisites": [],
        "targets": [],
        "contextTargets": [],
        "rules": [],
        "fallthrough": {"variation": 0},
        "offVariation": 1,
        "variations": [True, False],
    }
    path = os.path.join(tempfile.mkdtemp(), "ld.json")
    with open(path, "w") as f:
        json.dump({"flags": {RULE: flag, STATIC: simple}}, f)
    client = LDClient(
        config=Config(
            sdk_key="bench-offline",
            send_events=False,
            diagnostic_opt_out=True,
            update_processor_class=Files.new_data_source(paths=[path]),
        ),
        start_wait=5,
    )
    if not client.is_initialized():
        raise RuntimeError("file data source did not initialize")

    def make(key: str) -> tuple[Loop, Loop]:
        variation = client.variation

        def pre(seq: list[Any]) -> None:
            for c in seq:
                variation(key, c, False)

        def ctx(seq: list[Any]) -> None:
            for u in seq:
                variation(key, Context.create(u), False)

        return pre, ctx

    def decide(key: str, user: str) -> bool:
        return bool(client.variation(key, Context.create(user), False))

    return {
        "version": version("launchdarkly-server-sdk"),
        "make": make,
        "ctxs": [Context.create(u) for u in USERS],
        "decide": decide,
    }


def unleash(_: str) -> dict[str, Any]:
    from importlib.metadata import version

    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    features = {
        "version": 1,
        "features": [
            {
                "name": RULE,
                "enabled": True,
                "strategies": [
                    {"name": "userWithId", "parameters": {"userIds": ",".join(GROUP)}},
                    {
                        "name": "flexibleRollout",
                        "parameters": {"rollout": "25", "stickiness": "userId", "groupId": RULE},
                    },
                ],
            },
            {
                "name": STATIC,
                "enabled": True,
                "strategies": [{"name": "default", "parameters": {}}],
            },
        ],
    }
    cache = FileCache("bench", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(features)
    client = UnleashClient(
        url="http://127.0.0.1:9",
        app_name="bench",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
    )
    client.initialize_client(fetch_toggles=False)

    def make(key: str) -> tuple[Loop, Loop]:
        enabled = client.is_enabled

        def pre(seq: list[Any]) -> None:
            for c in seq:
                enabled(key, c)

        def ctx(seq: list[Any]) -> None:
            for u in seq:
                enabled(key, {"userId": u})

        return pre, ctx

    def decide(key: str, user: str) -> bool:
        return bool(client.is_enabled(key, {"userId": user}))

    return {
        "version": version("UnleashClient"),
        "make": make,
        "ctxs": [{"userId": u} for u in USERS],
        "decide": decide,
    }


def flagd(_: str) -> dict[str, Any]:
    from importlib.metadata import version

    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType
    from openfeature.evaluation_context import EvaluationContext

    flags = {
        "flags": {
            RULE: {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {
                    "if": [
                        {"in": [{"var": "targetingKey"}, GROUP]},
                        "on",
                        {"fractional": [["on", 25], ["off", 75]]},
                    ]
                },
            },
            STATIC: {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            },
        }
    }
    path = os.path.join(tempfile.mkdtemp(), "flags.json")
    with open(path, "w") as f:
        json.dump(flags, f)
    api.set_provider_and_wait(
        FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=path)
    )
    client = api.get_client()

    def make(key: str) -> tuple[Loop, Loop]:
        get = client.get_boolean_value

        def pre(seq: list[Any]) -> None:
            for c in seq:
                get(key, False, c)

        def ctx(seq: list[Any]) -> None:
            for u in seq:
                get(key, False, EvaluationContext(targeting_key=u))

        return pre, ctx

    def decide(key: str, user: str) -> bool:
        return bool(client.get_boolean_value(key, False, EvaluationContext(targeting_key=user)))

    return {
        "version": f"provider {version('openfeature-provider-flagd')}, core "
        f"{version('openfeature-flagd-core')}, sdk {version('openfeature-sdk')}",
        "make": make,
        "ctxs": [EvaluationContext(targeting_key=u) for u in USERS],
        "decide": decide,
    }


def flagsmith(_: str) -> dict[str, Any]:
    from importlib.metadata import version

    from flagsmith import Flagsmith
    from flagsmith.offline_handlers import LocalFileHandler

    def state(
        fid: int, name: str, enabled: bool, uuid: str, priority: int | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "enabled": enabled,
            "feature_state_value": None,
            "feature": {"id": fid, "name": name},
            "featurestate_uuid": uuid,
            "multivariate_feature_state_values": [],
            "django_id": fid,
        }
        if priority is not None:
            out["feature_segment"] = {"priority": priority}
        return out

    def segment(sid: int, name: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": sid,
            "name": name,
            "rules": [
                {
                    "type": "ALL",
                    "conditions": [],
                    "rules": [{"type": "ALL", "rules": [], "conditions": [condition]}],
                }
            ],
            "feature_states": [state(1, RULE, True, f"seg-{sid}", sid - 1)],
        }

    env = {
        "api_key": "bench",
        "name": "bench",
        "updated_at": "2026-11-26T00:00:00+00:00",
        "feature_states": [state(1, RULE, False, "fs-1"), state(2, STATIC, True, "fs-2")],
        "identity_overrides": [],
        "project": {
            "segments": [
                segment(
                    1,
                    "group",
                    {
                        "operator": "IN",
                        "property_": "$.identity.identifier",
                        "value": ",".join(GROUP),
                    },
                ),
                segment(
                    2, "rollout", {"operator": "PERCENTAGE_SPLIT", "property_": "", "value": "25"}
                ),
            ]
        },
    }
    path = os.path.join(tempfile.mkdtemp(), "environment.json")
    with open(path, "w") as f:
        json.dump(env, f)
    fs = Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(path))

    def make(key: str) -> tuple[Loop, Loop]:
        identity = fs.get_identity_flags

        def pre(seq: list[Any]) -> None:
            for u in seq:
                identity(u).is_feature_enabled(key)

        return pre, pre

    def decide(key: str, user: str) -> bool:
        return bool(fs.get_identity_flags(user).is_feature_enabled(key))

    return {
        "version": f"{version('flagsmith')}, engine {version('flagsmith-flag-engine')}",
        "make": make,
        "ctxs": USERS,
        "decide": decide,
    }


SDKS = {
    "sluicegate": sluicegate,
    "baseline": baseline,
    "growthbook": growthbook,
    "launchdarkly": launchdarkly,
    "unleash": unleash,
    "flagd": flagd,
    "flagsmith": flagsmith,
}


def main() -> None:
    name, reps, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sdk, _, variant = name.partition(":")
    setup = SDKS[sdk](variant)
    result: dict[str, Any] = {"name": name, "version": setup["version"]}
    rule_pre, rule_ctx = setup["make"](RULE)
    static_pre, _ = setup["make"](STATIC)
    result["rule_prebuilt"] = timed(rule_pre, setup["ctxs"], reps, n)
    result["rule_ctx"] = timed(rule_ctx, USERS, reps, n)
    result["static_prebuilt"] = timed(static_pre, setup["ctxs"], reps, n)
    decide = setup["decide"]
    result["on_share"] = sum(decide(RULE, u) for u in USERS) / len(USERS)
    result["group_on"] = sum(decide(RULE, u) for u in GROUP)
    result["static_on"] = sum(decide(STATIC, u) for u in USERS) / len(USERS)
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # some SDKs keep non-daemon threads alive


if __name__ == "__main__":
    main()
