"""A throwaway Prometheus for tests: Debian's ``/usr/bin/prometheus``, a temp dir, a free port.

``PrometheusServer.start()`` writes a config (scrape and evaluation interval 1 s, no jobs yet),
starts Prometheus with its TSDB in the temp dir, listening on 127.0.0.1 only, and waits for
``/-/ready``. ``scrape_router(router)`` adds a job for a router's admin ``/metrics`` (with its
bearer token), reloads the config with SIGHUP (no ``--web.enable-lifecycle`` needed) and waits
until the first scrape succeeded, so one Prometheus serves a whole test session while each
test brings its own router. ``require_prometheus()`` skips (or, with
``SLUICEGATE_REQUIRE_ALL=1``, fails) when the package is missing.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests._support import RouterProcess, _terminate, free_port, require_binary

__all__ = ["PrometheusServer", "require_prometheus"]


def require_prometheus() -> str:
    """Path of Debian's prometheus binary; skip (or fail) when it is not installed."""
    return require_binary("prometheus")


class PrometheusServer:
    """One running Prometheus; ``stop()`` ends it and removes its files."""

    def __init__(self, binary: str, root: Path, port: int) -> None:
        self.binary, self.root, self.port = binary, root, port
        self.url = f"http://127.0.0.1:{port}"
        self.jobs: dict[str, dict[str, Any]] = {}
        self._names = itertools.count(1)
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, binary: str, timeout: float = 30.0) -> PrometheusServer:
        server = cls(binary, Path(tempfile.mkdtemp(prefix="sluice-prom-")), free_port())
        server._write_config()
        cmd = [
            binary,
            f"--config.file={server.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={server.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{server.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        with open(server.root / "log", "wb") as log:
            server.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=server.root
            )
        try:
            server._wait(
                lambda: server._get("/-/ready").status_code == 200, timeout, "GET /-/ready = 200"
            )
        except BaseException:
            server.stop()
            raise
        return server

    def logs(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace")[-8000:] if path.exists() else ""

    def scrape_router(self, router: RouterProcess, timeout: float = 30.0) -> str:
        """Scrape ``router``'s admin /metrics every second from now on; returns the job name
        (use it as a ``job`` label matcher) once the first scrape has succeeded. That takes
        about 6 s whatever we do: Prometheus applies new scrape targets on a 5 s tick (a
        fresh Prometheus with the job in its first config is no quicker)."""
        job = f"router{next(self._names)}"
        self.jobs[job] = {
            "job_name": job,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "metrics_path": "/metrics",
            "authorization": {"credentials": router.token},
            "static_configs": [{"targets": [f"127.0.0.1:{router.admin_port}"]}],
        }
        self._reload()
        self._wait(
            lambda: self.instant(f'up{{job="{job}"}}') == [1.0],
            timeout,
            f"a successful scrape of job {job}",
        )
        return job

    def forget(self, job: str) -> None:
        """Stop scraping ``job`` (its stored samples stay)."""
        if self.jobs.pop(job, None) is not None:
            self._reload()

    def instant(self, query: str) -> list[float]:
        """Values of an instant query now, one per series (for waiting, not for asserting)."""
        r = httpx.post(self.url + "/api/v1/query", data={"query": query}, timeout=5)
        r.raise_for_status()
        return [float(s["value"][1]) for s in r.json()["data"]["result"]]

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 10)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- internals ------------------------------------------------------------------------

    def _write_config(self) -> None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": list(self.jobs.values()),
        }
        path = self.root / "prometheus.yml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.replace(path)

    def _reload(self) -> None:
        assert self.proc is not None
        self._write_config()
        self.proc.send_signal(signal.SIGHUP)
        self._wait(
            lambda: self._loaded_jobs() == set(self.jobs),
            15,
            f"the config reload (jobs {sorted(self.jobs)}; a refused config is logged)",
        )

    def _loaded_jobs(self) -> set[str]:
        r = self._get("/api/v1/status/config")
        config = yaml.safe_load(r.json()["data"]["yaml"]) or {}
        return {job["job_name"] for job in config.get("scrape_configs") or []}

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=2)

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            assert self.proc is not None
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"prometheus exited with {code} waiting for {what}:\n{self.logs()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus: no {what} after {timeout}s {last}\n{self.logs()}")
            time.sleep(0.1)
