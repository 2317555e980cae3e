"""Containers for ``make demo-containers``: a Podman API service of the demo's own, and the
shop image built locally (no registry needed).

The image is ``FROM scratch`` with Debian's busybox-static: its ``httpd`` serves
``/healthz``, and ``/`` answers ``$SHOP_VERSION`` (in the ``X-Version`` header too) and
fails ``$SHOP_FAIL_PERCENT`` % of requests with a 500. Podman runs with runc and no default
ulimits (what these machines need), its store in the demo's work dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

IMAGE = "localhost/sluice-demo-shop"
_BUSYBOX = "/bin/busybox"
_CONTAINERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 8080
CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
"""
_INDEX_CGI = """\
#!/bin/sh
if [ $((RANDOM % 100)) -lt "${SHOP_FAIL_PERCENT:-0}" ]; then
  printf 'HTTP/1.1 500 Internal Server Error\\r\\n'
fi
printf 'Content-Type: text/plain\\r\\nX-Version: %s\\r\\n\\r\\nshop %s\\n' \\
  "$SHOP_VERSION" "$SHOP_VERSION"
"""


class Podman:
    """``podman system service`` on ``<workdir>/podman/podman.sock``."""

    def __init__(self, workdir: Path) -> None:
        missing = [name for name in ("podman", "runc") if shutil.which(name) is None]
        if not os.path.exists(_BUSYBOX):
            missing.append("busybox-static")
        if missing:
            raise RuntimeError(
                "make demo-containers needs Podman: apt-get install -y "
                f"--no-install-recommends podman runc catatonit busybox-static (missing: "
                f"{', '.join(missing)})"
            )
        self.root = workdir / "podman"
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "containers.conf"
        conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n')
        storage = self.root / "storage.conf"
        storage.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{self.root}/run"\n'
                           f'graphroot = "{self.root}/graph"\n')  # fmt: skip
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf),
                    "CONTAINERS_STORAGE_CONF": str(storage)}  # fmt: skip
        self.socket = self.root / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def podman(self, *args: str) -> str:
        out = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self) -> None:
        log = open(self.root / "service.log", "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", self.url], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        transport = httpx.HTTPTransport(uds=str(self.socket))
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "service.log").read_text(errors="replace"))
            try:
                with httpx.Client(transport=transport, timeout=2) as client:
                    if client.get("http://podman/_ping").status_code == 200:
                        return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("podman system service did not answer within 30 s")

    def build(self, tags: tuple[str, ...]) -> None:
        context = self.root / "image"
        (context / "www" / "cgi-bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(_BUSYBOX, context / "busybox")
        (context / "www" / "healthz").write_text("ok\n")
        cgi = context / "www" / "cgi-bin" / "index.cgi"
        cgi.write_text(_INDEX_CGI)
        cgi.chmod(0o755)
        (context / "Containerfile").write_text(_CONTAINERFILE)
        self.podman("build", "-q", "-t", f"{IMAGE}:{tags[0]}", str(context))
        for tag in tags[1:]:
            self.podman("tag", f"{IMAGE}:{tags[0]}", f"{IMAGE}:{tag}")

    def stop(self) -> int:
        """Remove the demo's containers, stop the service; how many containers there were."""
        ids: list[str] = []
        try:
            ids = self.podman("ps", "-aq", "--filter", "label=sluicegate.service").split()
            if ids:
                self.podman("rm", "-f", "-t", "0", *ids)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return len(ids)


def container_compute() -> dict[str, Any]:
    """The shop spec's ``compute`` block as containers."""
    return {
        "container": {
            "image": f"{IMAGE}:{{revision}}",
            "port": 8080,
            "env": {"SHOP_VERSION": "{revision}"},
            "replicas": 2,
            "memory": "64m",
            "stop_grace": "5s",
            "pull": "never",
        }
    }
