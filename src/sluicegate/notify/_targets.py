"""Where a webhook may be sent: not to this host or its private networks, unless allowed.

A webhook URL is chosen by an admin but the request comes from the server, inside the
network: without this check a webhook could reach the cloud metadata service
(169.254.169.254), the router's admin port on loopback, or databases on the private network
(SSRF). The host is resolved and **every** address it resolves to is checked, which also
covers other spellings of the same address (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``)
and names that resolve there. It is checked when the webhook is created and again before
each delivery (a name may resolve elsewhere later; the window between that check and the
connection remains — documented).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from sluicegate.errors import Problem, SpecError

__all__ = ["ALLOW_FLAG", "blocked_address", "check_target"]

ALLOW_FLAG = "sluice server --allow-private-webhooks"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def blocked_address(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return blocked_address(mapped)
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives there)", address.is_link_local),
        ("private", address.is_private),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    )
    return next((name for name, hit in kinds if hit), None)


async def check_target(url: str, allow_private: bool) -> None:
    """SpecError (path ``url``) when ``url`` is not http(s), has no host, cannot be resolved,
    or resolves to an address :func:`blocked_address` refuses and ``allow_private`` is off."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError([Problem("url", f"{url!r} is not an http:// or https:// URL")])
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except (OSError, ValueError) as exc:
        raise SpecError([Problem("url", f"cannot resolve {parts.hostname!r}: {exc}")]) from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        why = blocked_address(address)
        if why is not None:
            name = parts.hostname.strip("[]")
            what = f"{name} is" if name == str(address) else f"{name} is {address},"
            raise SpecError([Problem("url", (
                f"{what} a {why} address; webhooks go to public addresses only unless the "
                f"server runs with {ALLOW_FLAG}"))])  # fmt: skip
