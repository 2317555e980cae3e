"""Rule conditions compiled to predicates over a request view (pure)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from sluicegate.router._flagslot import FlagSlot
from sluicegate.spec.router import FlagMatchSpec, MatchSpec

__all__ = ["RequestView", "compile_match"]


@dataclass
class RequestView:
    """What a rule may look at. Built only when a listener has rules."""

    path: str
    query_string: str
    host: str
    headers: dict[str, list[str]]  # lower-cased names
    _cookies: dict[str, str] | None = field(default=None, repr=False)
    _query: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            jar: SimpleCookie = SimpleCookie()
            for raw in self.headers.get("cookie", []):
                try:
                    jar.load(raw)
                except Exception:  # a malformed cookie header matches no cookie rule
                    continue
            self._cookies = {k: m.value for k, m in jar.items()}
        return self._cookies

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            out: dict[str, list[str]] = {}
            for k, v in parse_qsl(self.query_string, keep_blank_values=True):
                out.setdefault(k, []).append(v)
            self._query = out
        return self._query


Predicate = Callable[[RequestView], bool]


def bare_host(host: str) -> str:
    """The host a ``host`` rule matches: without the port (``[::1]:80`` is ``[::1]``) and
    without a trailing dot (``shop.example.`` is ``shop.example``)."""
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.partition(":")[0].rstrip(".")


def _globs(patterns: str | list[str], ignore_case: bool) -> re.Pattern[str]:
    items = [patterns] if isinstance(patterns, str) else patterns
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in items), flags)


def compile_match(spec: MatchSpec, flags: FlagSlot | None = None) -> Predicate:
    """All given conditions must hold; each value list matches if any glob matches.

    A flag condition reads the flag set in ``flags`` at request time and is tested last,
    so its no-match counters count only requests the other conditions let through."""
    checks: list[Predicate] = []
    if spec.path_prefix is not None:
        prefix = spec.path_prefix
        checks.append(lambda r: r.path.startswith(prefix))
    if spec.host is not None:
        host_re = _globs(spec.host, ignore_case=True)
        # The port is not part of the host match, as on ALB.
        checks.append(lambda r: bool(host_re.match(bare_host(r.host))))
    for name, patterns in (spec.header or {}).items():
        checks.append(_header_check(name.lower(), _globs(patterns, ignore_case=True)))
    for name, patterns in (spec.cookie or {}).items():
        checks.append(_cookie_check(name, _globs(patterns, ignore_case=False)))
    for name, patterns in (spec.query or {}).items():
        checks.append(_query_check(name, _globs(patterns, ignore_case=False)))
    if spec.flag is not None:
        checks.append(_flag_check(spec.flag, flags if flags is not None else FlagSlot()))
    return lambda r: all(check(r) for check in checks)


def _flag_check(spec: FlagMatchSpec, slot: FlagSlot) -> Predicate:
    key, wanted = spec.key, spec.variants
    kind, name = spec.user_from.source
    if kind == "cookie":

        def user(r: RequestView) -> str | None:
            return r.cookies.get(name)
    elif kind == "header":
        lower = name.lower()

        def user(r: RequestView) -> str | None:
            values = r.headers.get(lower)
            return values[0].strip() if values else None
    else:

        def user(r: RequestView) -> str | None:
            values = r.query.get(name)
            return values[0] if values else None

    def check(r: RequestView) -> bool:
        uid = user(r)
        if not uid:
            slot.no_user_id += 1
            return False
        return slot.variant(key, uid) in wanted

    return check


def _header_check(key: str, rx: re.Pattern[str]) -> Predicate:
    return lambda r: any(rx.match(v) for v in r.headers.get(key, ()))


def _cookie_check(key: str, rx: re.Pattern[str]) -> Predicate:
    return lambda r: key in r.cookies and bool(rx.match(r.cookies[key]))


def _query_check(key: str, rx: re.Pattern[str]) -> Predicate:
    return lambda r: any(rx.match(v) for v in r.query.get(key, ()))
