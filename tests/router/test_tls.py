"""HTTPS on the router end to end: a real router terminating TLS with trustme certificates in
front of two sample apps.

    web       TLS [shop.example, *.example.com, api.example.com] -> v1/v2 50:50, sticky
    strict    TLS min_version 1.3 [shop.example]                  -> v1
    plain     redirect to web (308)
    lb        plain HTTP, trusting 127.0.0.1 as a proxy           -> v1
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests._support import AppProcess, RouterProcess, free_port, start_app, start_router
from tests._support.tls import client_context, peer_names, write_leaf
from tests._support.ws import OP_TEXT, WebSocketClient


class HTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 asking for server name ``name`` (SNI and Host)."""

    def __init__(self, port: int, name: str, ctx: ssl.SSLContext) -> None:
        super().__init__("127.0.0.1", port, context=ctx, timeout=10)
        self.name = name

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.name)

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        self.request("GET", path, headers={"Host": self.name, **(headers or {})})
        r = self.getresponse()
        r.body = r.read()  # type: ignore[attr-defined]
        return r


def handshake(port: int, name: str | None, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=name)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("tls")
    return {
        "dir": tmp,
        "shop": write_leaf(tmp, "shop", ca.issue_cert("shop.example")),
        "wild": write_leaf(tmp, "wild", ca.issue_cert("*.example.com")),
        "api": write_leaf(tmp, "api", ca.issue_cert("api.example.com")),
        "rot": write_leaf(tmp, "rot", ca.issue_cert("rot.example")),
        "hup": _padded(write_leaf(tmp, "hup", ca.issue_cert("hup.example"))),
    }


PAD = 16384  # the "hup" files are padded to this size, so new contents keep their size


def _padded(files: dict[str, str]) -> dict[str, str]:
    for path in files.values():
        data = Path(path).read_bytes()
        Path(path).write_bytes(data + b"\n" * (PAD - len(data)))
    return files


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[AppProcess, AppProcess]]:
    with start_app(version="v1") as v1, start_app(version="v2") as v2:
        yield v1, v2


@pytest.fixture(scope="module")
def router(apps: tuple[AppProcess, AppProcess], certs: dict[str, Any]) -> Iterator[RouterProcess]:
    v1, v2 = apps
    only_v1 = {"forward": [{"target_group": "v1"}]}
    web = free_port()
    config = {
        "listeners": [
            {
                "name": "web",
                "port": web,
                "tls": {"certificates": [certs["shop"], certs["wild"], certs["api"]]},
                "default": {
                    "forward": [{"target_group": "v1"}, {"target_group": "v2"}],
                    "stickiness": {"enabled": True},
                },
            },
            {
                "name": "strict",
                "port": free_port(),
                "tls": {"certificates": [certs["shop"]], "min_version": "1.3"},
                "default": only_v1,
            },
            {"name": "plain", "port": free_port(), "redirect": {"to_port": web, "status": 308}},
            {
                "name": "lb",
                "port": free_port(),
                "trusted_proxies": ["127.0.0.1/32"],
                "default": only_v1,
            },
            {
                "name": "rot",
                "port": free_port(),
                "tls": {"certificates": [certs["rot"]]},
                "default": only_v1,
            },
            {
                "name": "hup",
                "port": free_port(),
                "tls": {"certificates": [certs["hup"]]},
                "default": only_v1,
            },
        ],
        "target_groups": [
            {"name": "v1", "targets": [v1.address], "health_check": {"enabled": False}},
            {"name": "v2", "targets": [v2.address], "health_check": {"enabled": False}},
        ],
    }
    with start_router(config) as r:
        yield r
        assert r.proc.poll() is None, f"router died:\n{r.logs()}"


# -- SNI and versions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "served"),
    [
        ("shop.example", ["shop.example"]),
        ("api.example.com", ["api.example.com"]),  # exact beats the wildcard
        ("www.example.com", ["*.example.com"]),
        ("unknown.test", ["shop.example"]),  # the default: the first certificate
        (None, ["shop.example"]),  # no SNI at all
    ],
)
def test_sni_chooses_the_certificate_whose_names_match(
    router: RouterProcess, ca: trustme.CA, name: str | None, served: list[str]
) -> None:
    ctx = client_context(ca, check_hostname=False)
    with handshake(router.listener_port("web"), name, ctx) as s:
        assert peer_names(s) == served
        assert s.selected_alpn_protocol() in (None, "http/1.1")
        assert s.version() in ("TLSv1.2", "TLSv1.3")


def test_alpn_offers_http_1_1_only(router: RouterProcess, ca: trustme.CA) -> None:
    ctx = client_context(ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(router.listener_port("web"), "shop.example", ctx) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_0_and_1_1_are_refused(router: RouterProcess, ca: trustme.CA) -> None:
    """The client here can speak TLS 1.1 (OpenSSL at security level 0): the refusal is the
    router's (it ends the handshake)."""
    ctx = client_context(ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as exc:
        handshake(router.listener_port("web"), "shop.example", ctx)
    if "NO_PROTOCOLS_AVAILABLE" in str(exc.value):  # never offered: nothing was tested
        pytest.skip("this OpenSSL cannot offer TLS 1.0/1.1 as a client")


def test_a_min_version_1_3_listener_refuses_a_tls_1_2_client(
    router: RouterProcess, ca: trustme.CA
) -> None:
    ctx = client_context(ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        handshake(router.listener_port("strict"), "shop.example", ctx)
    ctx13 = client_context(ca)
    with handshake(router.listener_port("strict"), "shop.example", ctx13) as s:
        assert s.version() == "TLSv1.3"  # the same listener serves a 1.3 client


def test_a_client_not_trusting_the_ca_fails_the_handshake(router: RouterProcess) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(router.listener_port("web"), "shop.example", ssl.create_default_context())


# -- HTTP over TLS -----------------------------------------------------------------------------


def test_split_and_stickiness_over_https(router: RouterProcess, ca: trustme.CA) -> None:
    ctx = client_context(ca)
    port = router.listener_port("web")
    seen = set()
    for _ in range(40):  # fresh clients: split by weight (both at 1)
        c = HTTPS(port, "shop.example", ctx)
        r = c.get("/")
        assert r.status == 200
        seen.add(r.body.split()[2])  # type: ignore[attr-defined]
        cookie = r.getheader("Set-Cookie")
        c.close()
    assert seen == {b"v1", b"v2"}
    assert cookie is not None
    assert "; Secure;" in cookie and "HttpOnly" in cookie
    pinned = cookie.split(";")[0]
    c = HTTPS(port, "shop.example", ctx)
    versions = {c.get("/", {"Cookie": pinned}).body.split()[2] for _ in range(20)}  # type: ignore[attr-defined]
    c.close()
    assert len(versions) == 1


def test_x_forwarded_headers_over_tls_ignore_what_the_client_claims(
    router: RouterProcess, ca: trustme.CA
) -> None:
    port = router.listener_port("web")
    c = HTTPS(port, "shop.example", client_context(ca))
    spoof = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "1"}
    r = c.get("/headers", spoof)
    c.close()
    headers = {k.lower(): v for k, v in json.loads(r.body)["headers"]}  # type: ignore[attr-defined]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == str(port)
    assert headers["x-forwarded-host"] == "shop.example"


def test_a_trusted_proxy_keeps_its_x_forwarded_headers(router: RouterProcess) -> None:
    c = http.client.HTTPConnection("127.0.0.1", router.listener_port("lb"), timeout=10)
    c.request(
        "GET",
        "/headers",
        headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
    )
    body = json.loads(c.getresponse().read())
    c.close()
    values: dict[str, list[str]] = {}
    for k, v in body["headers"]:
        values.setdefault(k.lower(), []).append(v)
    assert values["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"]
    assert values["x-forwarded-proto"] == ["https"]  # its, not ours ("http")
    assert "x-forwarded-port" not in values  # it sent none; ours would contradict its proto


def test_redirect_keeps_host_path_and_query(router: RouterProcess) -> None:
    c = http.client.HTTPConnection("127.0.0.1", router.listener_port("plain"), timeout=10)
    c.request("GET", "/cart/items?id=7&x=a%20b", headers={"Host": "shop.example:8080"})
    r = c.getresponse()
    r.read()
    assert r.status == 308
    web = router.listener_port("web")
    assert r.getheader("Location") == f"https://shop.example:{web}/cart/items?id=7&x=a%20b"
    c.request("GET", "/again", headers={"Host": "shop.example"})  # keep-alive: same connection
    r = c.getresponse()
    r.read()
    assert r.getheader("Location") == f"https://shop.example:{web}/again"
    c.close()


def test_websocket_upgrade_over_tls(router: RouterProcess, ca: trustme.CA) -> None:
    ctx = client_context(ca)
    port = router.listener_port("web")
    with WebSocketClient("127.0.0.1", port, "/ws", tls=ctx, server_hostname="shop.example") as ws:
        assert ws.status == 101
        ws.send_text("over tls")
        assert ws.recv() == (OP_TEXT, b"over tls")
        assert ws.close(1000) == 1000


def test_the_admin_status_shows_the_certificates_served(router: RouterProcess) -> None:
    status = router.admin("GET", "/v1/status").json()
    tls = status["listeners"]["web"]["tls"]
    assert [c["names"] for c in tls["certificates"]] == [
        ["shop.example"],
        ["*.example.com"],
        ["api.example.com"],
    ]
    assert tls["error"] is None


def test_a_config_with_a_missing_certificate_is_refused_and_changes_nothing(
    router: RouterProcess, certs: dict[str, Any]
) -> None:
    config = json.loads(json.dumps(router.config))
    config["listeners"][0]["tls"]["certificates"][1]["cert"] = str(certs["dir"] / "gone.pem")
    r = router.admin("PUT", "/v1/config", config)
    assert r.status_code == 422, r.text
    assert "listeners[0].tls.certificates[1].cert" in r.text
    assert "gone.pem" in r.text
    status = router.admin("GET", "/v1/status").json()
    assert len(status["listeners"]["web"]["tls"]["certificates"]) == 3


# -- rotation ----------------------------------------------------------------------------------


def _served(port: int, ca: trustme.CA) -> bytes:
    with handshake(port, "rot.example", client_context(ca)) as s:
        der = s.getpeercert(binary_form=True)
        assert der is not None
        return der


def _wait_served(port: int, ca: trustme.CA, want: bytes) -> None:
    deadline = time.monotonic() + 10
    while _served(port, ca) != want:
        assert time.monotonic() < deadline, "the new certificate was not served within 10 s"
        time.sleep(0.1)


def _install(files: dict[str, str], leaf: trustme.LeafCert, tmp: Path) -> bytes:
    """Replace the files atomically (rename), the key first; the new certificate's DER."""
    new = write_leaf(tmp, "incoming", leaf)
    Path(new["key"]).replace(files["key"])
    Path(new["cert"]).replace(files["cert"])
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def test_rotating_the_certificate_under_load_fails_no_request(
    router: RouterProcess, ca: trustme.CA, certs: dict[str, Any], tmp_path: Path
) -> None:
    port = router.listener_port("rot")
    ctx = client_context(ca)
    kept = HTTPS(port, "rot.example", ctx)  # opened before: must survive the rotation
    assert kept.get("/").status == 200
    stop = threading.Event()
    results: list[int | str] = []

    def load() -> None:
        while not stop.is_set():
            c = HTTPS(port, "rot.example", ctx)  # a new handshake each time
            try:
                results.append(c.get("/").status)
            except (OSError, http.client.HTTPException) as exc:
                results.append(repr(exc))
            finally:
                c.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(2):
            want = _install(certs["rot"], ca.issue_cert("rot.example"), tmp_path)
            _wait_served(port, ca, want)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    failures = [r for r in results if r != 200]
    assert failures == [] and len(results) > 20, (len(results), failures[:5])
    assert kept.get("/").status == 200
    kept.close()


def test_a_bad_replacement_certificate_is_refused_and_the_old_one_keeps_serving(
    router: RouterProcess, ca: trustme.CA, certs: dict[str, Any], tmp_path: Path
) -> None:
    port = router.listener_port("rot")
    before = _served(port, ca)
    key = Path(certs["rot"]["key"])
    good_key = key.read_bytes()
    other = trustme.CA().issue_cert("rot.example")  # a key that does not match the cert
    other.private_key_pem.write_to_path(str(tmp_path / "wrong.key"))
    (tmp_path / "wrong.key").replace(key)
    try:
        deadline = time.monotonic() + 10
        while (
            error := router.admin("GET", "/v1/status").json()["listeners"]["rot"]["tls"]["error"]
        ) is None:
            assert time.monotonic() < deadline, "the bad key was not noticed within 10 s"
            time.sleep(0.1)
        assert "listeners[4].tls.certificates[0].key" in error
        assert "is not the private key of" in error
        assert _served(port, ca) == before
        assert "new certificate files refused" in router.logs()
    finally:
        key.write_bytes(good_key)


def test_each_worker_serves_tls_with_the_certificates_by_sni(
    apps: tuple[AppProcess, AppProcess], ca: trustme.CA, certs: dict[str, Any]
) -> None:
    v1, _ = apps
    port = free_port()
    config = {
        "listeners": [
            {
                "name": "web",
                "port": port,
                "tls": {"certificates": [certs["shop"], certs["api"]]},
                "default": {"forward": [{"target_group": "v1"}]},
            }
        ],
        "target_groups": [
            {"name": "v1", "targets": [v1.address], "health_check": {"enabled": False}}
        ],
    }
    with start_router(config, workers=2) as r:
        ctx = client_context(ca)
        for _ in range(10):  # new connections: SO_REUSEPORT spreads them over both workers
            c = HTTPS(port, "api.example.com", ctx)
            assert c.get("/").status == 200
            assert peer_names(c.sock) == ["api.example.com"]  # type: ignore[arg-type]
            c.close()
        bad = json.loads(json.dumps(config))
        bad["listeners"][0]["tls"]["certificates"][0]["key"] = certs["api"]["key"]
        refused = r.admin("PUT", "/v1/config", bad)
        assert refused.status_code == 422
        assert "listeners[0].tls.certificates[0].key" in refused.text
        c = HTTPS(port, "shop.example", ctx)
        assert c.get("/").status == 200
        c.close()
        r.proc.send_signal(signal.SIGHUP)  # the parent asks each worker to re-read
        deadline = time.monotonic() + 10
        while "SIGHUP: certificate files re-read" not in r.logs():
            assert r.proc.poll() is None and time.monotonic() < deadline, r.logs()
            time.sleep(0.1)


def test_sighup_rereads_certificates_the_file_watch_cannot_see_change(
    router: RouterProcess, ca: trustme.CA, certs: dict[str, Any], tmp_path: Path
) -> None:
    """New contents written into the same files with the same size and modification time:
    the once-a-second watch sees nothing, SIGHUP re-reads them anyway."""
    port = router.listener_port("hup")

    def served() -> bytes:
        with handshake(port, "hup.example", client_context(ca)) as s:
            der = s.getpeercert(binary_form=True)
            assert der is not None
            return der

    before = served()
    new = write_leaf(tmp_path, "next", ca.issue_cert("hup.example"))
    for field in ("cert", "key"):
        path = certs["hup"][field]
        st = os.stat(path)
        data = Path(new[field]).read_bytes()
        with open(path, "r+b") as f:  # same inode, same size
            f.write(data + b"\n" * (PAD - len(data)))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same modification time
    want = ssl.PEM_cert_to_DER_cert(Path(new["cert"]).read_text())
    assert want != before
    router.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while served() != want:
        assert time.monotonic() < deadline, "SIGHUP did not load the new certificate in 10 s"
        time.sleep(0.1)
    assert router.proc.poll() is None
    assert "SIGHUP: certificate files re-read" in router.logs()


def test_a_port_switches_between_plain_http_and_tls_in_one_config_change(
    apps: tuple[AppProcess, AppProcess], ca: trustme.CA, certs: dict[str, Any]
) -> None:
    v1, _ = apps
    port = free_port()
    plain = {
        "listeners": [
            {"name": "web", "port": port, "default": {"forward": [{"target_group": "v1"}]}}
        ],
        "target_groups": [
            {"name": "v1", "targets": [v1.address], "health_check": {"enabled": False}}
        ],
    }
    tls = json.loads(json.dumps(plain))
    tls["listeners"][0]["tls"] = {"certificates": [certs["shop"]]}
    with start_router(plain) as r:
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept.request("GET", "/")
        assert kept.getresponse().read().startswith(b"hello from v1")
        assert r.admin("PUT", "/v1/config", tls).status_code == 200, r.logs()
        c = HTTPS(port, "shop.example", client_context(ca))
        assert c.get("/").status == 200  # the same port now speaks TLS
        c.close()
        kept.request("GET", "/")  # a connection accepted before the change carries on
        assert kept.getresponse().read().startswith(b"hello from v1")
        kept.close()
        assert r.admin("PUT", "/v1/config", plain).status_code == 200, r.logs()
        back = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        back.request("GET", "/")
        assert back.getresponse().status == 200
        back.close()
