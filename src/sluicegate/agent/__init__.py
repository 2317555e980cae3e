"""The flag agent: a sidecar that syncs one environment's flags from the server, keeps the
last known good copy on disk and serves evaluations on localhost (OFREP and plain HTTP).

See ``docs/agent.md`` for the sync protocol and the local API.
"""

from sluicegate.agent.agent import AgentSettings, run_agent, serve_agent

__all__ = ["AgentSettings", "run_agent", "serve_agent"]
