"""Run the official Node OpenFeature OFREP provider (tests/interop/node) against an agent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests._support import REPO_ROOT, require, require_binary

__all__ = ["NODE_INTEROP_DIR", "installed_versions", "node_evaluate", "require_node_interop"]

NODE_INTEROP_DIR = REPO_ROOT / "tests" / "interop" / "node"
_PROVIDER = NODE_INTEROP_DIR / "node_modules" / "@openfeature" / "ofrep-provider"


def require_node_interop() -> str:
    """Path of ``node`` once the interop packages are installed; skip (or, with
    ``SLUICEGATE_REQUIRE_ALL=1``, fail) when node or the node_modules are missing."""
    node = require_binary("node", "nodejs")
    require(
        _PROVIDER.is_dir(),
        f"{NODE_INTEROP_DIR.relative_to(REPO_ROOT)}/node_modules is not installed "
        f"(run: npm ci --prefix {NODE_INTEROP_DIR.relative_to(REPO_ROOT)})",
    )
    return node


def node_evaluate(
    node: str, agent_url: str, evaluations: list[dict[str, Any]], timeout: float = 60.0
) -> dict[str, Any]:
    """Run evaluate.mjs: ``{"versions", "provider", "results": [...]}`` (one result per
    evaluation, in order). A non-zero exit raises with node's stderr."""
    done = subprocess.run(
        [node, str(NODE_INTEROP_DIR / "evaluate.mjs"), agent_url],
        input=json.dumps(evaluations).encode(),
        capture_output=True,
        timeout=timeout,
        cwd=NODE_INTEROP_DIR,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"node evaluate.mjs exited {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')[-4000:]}"
        )
    lines = done.stdout.decode().strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def installed_versions(path: Path = NODE_INTEROP_DIR) -> dict[str, str]:
    """The exact versions package-lock.json pins for the direct dependencies."""
    lock = json.loads((path / "package-lock.json").read_text())
    deps = lock["packages"][""]["dependencies"]
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in deps}
