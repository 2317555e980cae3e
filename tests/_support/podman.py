"""A Podman API service of the tests' own, and the test app's images.

``podman system service`` serves the Docker Engine API on a unix socket in a temp dir, with a
``containers.conf`` (runtime runc, no default ulimits: crun and raising rlimits are refused
on these machines) and its own image store (vfs), so the tests leave nothing in the
machine's. The test app is busybox's ``httpd`` (Debian's ``busybox-static``) on a scratch
image: ``/healthz`` answers ``ok``, ``/`` answers ``$APP_VERSION`` in body and ``X-Version``
(and fails ``$FAIL_PERCENT`` % of requests with a 500: a bad release).
Without podman, runc or busybox-static the tests skip (fail with SLUICEGATE_REQUIRE_ALL=1).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests._support import require

__all__ = ["APP_IMAGE", "Container", "PodmanService", "build_app_images", "podman_service"]

APP_IMAGE = "localhost/sluice-test-app"
_BUSYBOX = "/bin/busybox"
_CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
"""
_CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
ENV APP_VERSION=unset
EXPOSE 8080
CMD ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
"""
_INDEX_CGI = """\
#!/bin/sh
if [ $((RANDOM % 100)) -lt "${FAIL_PERCENT:-0}" ]; then
  printf 'HTTP/1.1 500 Internal Server Error\\r\\n'
fi
printf 'Content-Type: text/plain\\r\\nX-Version: %s\\r\\n\\r\\n%s\\n' "$APP_VERSION" "$APP_VERSION"
"""


@dataclass(frozen=True)
class Container:
    id: str
    state: str  # running, exited, ...
    labels: dict[str, str]

    @property
    def revision(self) -> str:
        return self.labels.get("sluicegate.revision", "")


@dataclass
class PodmanService:
    """A running ``podman system service``: its socket and the environment of its store."""

    socket: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def podman(self, *args: str, timeout: float = 120) -> str:
        """Run the podman CLI on the same store; its stdout (CalledProcessError says why)."""
        out = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def labelled(self, service: str) -> list[Container]:
        """Every container (running or not) of ``service``, by id."""
        text = self.podman("ps", "-a", "--filter", f"label=sluicegate.service={service}",
                           "--format", "json")  # fmt: skip
        found = [
            Container(str(c["Id"]), str(c["State"]), dict(c.get("Labels") or {}))
            for c in json.loads(text or "[]")
        ]
        return sorted(found, key=lambda c: c.id)


def _env(root: Path) -> dict[str, str]:
    conf = root / "containers.conf"
    conf.write_text(_CONTAINERS_CONF)
    storage = root / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{root}/run"\ngraphroot = "{root}/graph"\n'
    )
    return {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}


def require_podman() -> None:
    require(shutil.which("podman") is not None, "podman is not installed (apt-get install podman)")
    require(shutil.which("runc") is not None, "runc is not installed (apt-get install runc)")
    require(os.path.exists(_BUSYBOX), "busybox-static is not installed (for the test image)")
    require(os.geteuid() == 0, "the container tests run Podman as root (rootful networking)")


@contextlib.contextmanager
def podman_service(root: Path, name: str = "podman") -> Iterator[PodmanService]:
    """A Podman API service on ``root/<name>.sock`` (store under ``root``); on exit every
    container in that store is removed and the service stopped."""
    require_podman()
    root.mkdir(parents=True, exist_ok=True)
    env = _env(root)
    sock = root / f"{name}.sock"
    log = open(root / f"{name}.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    service = PodmanService(sock, env, proc)
    try:
        deadline = time.monotonic() + 30
        transport = httpx.HTTPTransport(uds=str(sock))
        while True:
            assert proc.poll() is None, (root / f"{name}.log").read_text(errors="replace")
            if sock.exists():
                with (
                    contextlib.suppress(httpx.HTTPError),
                    httpx.Client(transport=transport, timeout=2) as client,
                ):
                    if client.get("http://d/_ping").status_code == 200:
                        break
            assert time.monotonic() < deadline, "podman system service: no answer in 30 s"
            time.sleep(0.1)
        yield service
    finally:
        with contextlib.suppress(Exception):
            ids = service.podman("ps", "-aq", "--filter", "label=sluicegate.service").split()
            if ids:
                service.podman("rm", "-f", "-t", "0", *ids)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def build_app_images(service: PodmanService, work: Path, tags: tuple[str, ...]) -> None:
    """Build the test app once and tag it ``APP_IMAGE:<tag>`` for each tag."""
    context = work / "app-image"
    (context / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(_BUSYBOX, context / "busybox")
    (context / "www" / "healthz").write_text("ok\n")
    cgi = context / "www" / "cgi-bin" / "index.cgi"
    cgi.write_text(_INDEX_CGI)
    cgi.chmod(0o755)
    (context / "Containerfile").write_text(_CONTAINERFILE)
    service.podman("build", "-q", "-t", f"{APP_IMAGE}:{tags[0]}", str(context), timeout=300)
    for tag in tags[1:]:
        service.podman("tag", f"{APP_IMAGE}:{tags[0]}", f"{APP_IMAGE}:{tag}")
