"""Loading listener certificates and choosing one by server name (no sockets: files and values)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from sluicegate.errors import SpecError
from sluicegate.router._tls import CertificateSet, load_certificates
from sluicegate.spec import parse_document
from sluicegate.spec.router import ListenerSpec, RouterConfig, TlsSpec


def _write(tmp: Path, name: str, cert: trustme.LeafCert) -> dict[str, str]:
    cert.private_key_pem.write_to_path(str(tmp / f"{name}.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / f"{name}.pem"))
    return {"cert": str(tmp / f"{name}.pem"), "key": str(tmp / f"{name}.key")}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    return {
        "shop": _write(tmp, "shop", ca.issue_cert("shop.example")),
        "wild": _write(tmp, "wild", ca.issue_cert("*.example.com")),
        "api": _write(tmp, "api", ca.issue_cert("api.example.com", "api2.example.com")),
        "other": _write(tmp, "other", ca.issue_cert("other.example")),
    }


def _problems(exc: pytest.ExceptionInfo[SpecError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


def test_sni_picks_exact_name_then_wildcard_then_the_first_certificate(
    files: dict[str, dict[str, str]],
) -> None:
    tls = parse_document(TlsSpec, {"certificates": [files["shop"], files["wild"], files["api"]]})
    certs = load_certificates(tls, "tls")
    shop, wild, api = certs.certificates
    assert certs.select("shop.example") is shop
    assert certs.select("API.example.com.") is api  # case and a trailing dot do not matter
    assert certs.select("api2.example.com") is api
    assert certs.select("www.example.com") is wild
    assert certs.select("a.b.example.com") is shop  # a wildcard covers one label only
    assert certs.select("example.com") is shop
    assert certs.select("unknown.test") is shop
    assert certs.select(None) is shop


def test_names_come_from_the_certificate_files(files: dict[str, dict[str, str]]) -> None:
    certs = load_certificates(parse_document(TlsSpec, {"certificates": [files["api"]]}), "tls")
    assert certs.default.names == ("api.example.com", "api2.example.com")
    assert isinstance(certs, CertificateSet)


def test_a_missing_certificate_file_is_refused_naming_the_field(
    files: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    missing = {"cert": str(tmp_path / "nope.pem"), "key": files["shop"]["key"]}
    tls = parse_document(TlsSpec, {"certificates": [files["shop"], missing]})
    with pytest.raises(SpecError) as exc:
        load_certificates(tls, "listeners[0].tls")
    problems = _problems(exc)
    assert list(problems) == ["listeners[0].tls.certificates[1].cert"]
    assert "nope.pem" in problems["listeners[0].tls.certificates[1].cert"]
    assert "No such file" in problems["listeners[0].tls.certificates[1].cert"]


def test_a_key_that_does_not_match_its_certificate_is_refused(
    files: dict[str, dict[str, str]],
) -> None:
    crossed = {"cert": files["shop"]["cert"], "key": files["other"]["key"]}
    with pytest.raises(SpecError) as exc:
        load_certificates(parse_document(TlsSpec, {"certificates": [crossed]}), "tls")
    assert _problems(exc) == {
        "tls.certificates[0].key": f"{files['other']['key']} is not the private key of"
        f" {files['shop']['cert']}"
    }


def test_a_certificate_without_dns_names_is_refused(tmp_path: Path) -> None:
    ca = trustme.CA()
    ip_only = _write(tmp_path, "ip", ca.issue_cert("127.0.0.1"))  # an IP SAN, no DNS name
    with pytest.raises(SpecError) as exc:
        load_certificates(parse_document(TlsSpec, {"certificates": [ip_only]}), "tls")
    assert "no DNS names in subjectAltName" in _problems(exc)["tls.certificates[0].cert"]


def test_a_file_that_is_not_pem_is_refused(
    files: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    bad_key = tmp_path / "junk.key"
    bad_key.write_text("not a key\n")
    tls = parse_document(
        TlsSpec,
        {
            "certificates": [
                {"cert": str(junk), "key": files["shop"]["key"]},
                {"cert": files["shop"]["cert"], "key": str(bad_key)},
            ]
        },
    )
    with pytest.raises(SpecError) as exc:
        load_certificates(tls, "tls")
    problems = _problems(exc)
    assert problems["tls.certificates[0].cert"] == f"{junk} is not a PEM certificate"
    assert problems["tls.certificates[1].key"].startswith(f"{bad_key} is not a usable PEM")


@pytest.mark.parametrize("version", ["1.0", "1.1", 1.1])
def test_tls_1_0_and_1_1_are_refused_in_the_spec(version: object) -> None:
    with pytest.raises(SpecError) as exc:
        parse_document(
            TlsSpec, {"certificates": [{"cert": "a", "key": "b"}], "min_version": version}
        )
    assert "is refused (deprecated by RFC 8996): use 1.2 or 1.3" in str(exc.value)
    assert exc.value.problems[0].path == "min_version"


def test_min_version_accepts_an_unquoted_yaml_number() -> None:
    tls = parse_document(TlsSpec, {"certificates": [{"cert": "a", "key": "b"}], "min_version": 1.3})
    assert tls.min_version == "1.3"


def test_an_unknown_cipher_policy_names_the_known_ones() -> None:
    with pytest.raises(SpecError) as exc:
        parse_document(TlsSpec, {"certificates": [{"cert": "a", "key": "b"}], "ciphers": "fast"})
    assert exc.value.problems[0].path == "ciphers"
    assert "unknown cipher policy 'fast' (known: default, compatible)" in str(exc.value)


def test_a_redirect_listener_has_neither_default_nor_rules() -> None:
    fwd = {"forward": [{"target_group": "app"}]}
    with pytest.raises(SpecError) as exc:
        parse_document(
            ListenerSpec,
            {"name": "plain", "port": 8080, "redirect": {"to_port": 8443}, "default": fwd},
        )
    assert [(p.path, p.message) for p in exc.value.problems] == [
        ("redirect", "a redirect listener has no default action")
    ]
    with pytest.raises(SpecError) as exc:
        parse_document(ListenerSpec, {"name": "plain", "port": 8080})
    assert exc.value.problems[0].path == "default"


def test_a_redirect_to_its_own_port_and_scheme_is_refused() -> None:
    with pytest.raises(SpecError) as exc:
        parse_document(
            ListenerSpec,
            {"name": "loop", "port": 8080, "redirect": {"to_port": 8080, "scheme": "http"}},
        )
    assert exc.value.problems[0].path == "redirect.to_port"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(SpecError) as exc:
        parse_document(
            RouterConfig,
            {
                "listeners": [
                    {
                        "name": "web",
                        "port": 8080,
                        "redirect": {"to_port": 8443},
                        "trusted_proxies": ["10.0.0.0/8", "lb.internal"],
                    }
                ]
            },
        )
    assert exc.value.problems[0].path == "listeners[0].trusted_proxies[1]"
    assert "'lb.internal' is not an IP address or network" in exc.value.problems[0].message


def test_router_check_reads_the_certificate_files_and_names_file_and_field(
    files: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """--check used to say "valid" for a config whose certificates the router then refused."""
    crossed = {"cert": files["shop"]["cert"], "key": files["other"]["key"]}
    config = {
        "listeners": [
            {
                "name": "web",
                "port": 8443,
                "tls": {"certificates": [files["shop"], crossed]},
                "default": {"forward": [{"target_group": "blue"}]},
            }
        ],
        "target_groups": [{"name": "blue"}],
    }
    path = tmp_path / "router.yaml"
    path.write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "sluicegate", "router", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{path}: 1 problem" in proc.stderr
    assert "listeners[0].tls.certificates[1].key" in proc.stderr
    assert "is not the private key of" in proc.stderr
    config["listeners"][0]["tls"]["certificates"] = [files["shop"]]  # type: ignore[index]
    path.write_text(json.dumps(config))
    ok = subprocess.run(
        [sys.executable, "-m", "sluicegate", "router", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
