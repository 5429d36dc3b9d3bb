"""Which environment values name a backing service procrun can put a proxy in front of. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit, urlunsplit

DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379,
                 "amqp": 5672, "mongodb": 27017, "memcached": 11211, "nats": 4222, "http": 80}
TLS_SCHEMES = {"rediss", "amqps", "https", "mongodb+srv", "mysqls", "postgress"}
TLS_QUERY = {"sslmode": {"require", "verify-ca", "verify-full"}, "ssl": {"true", "1"}, "tls": {"true", "1"},
             "ssl-mode": {"required", "verify_ca", "verify_identity"}}
LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


class Backing(NamedTuple):
    var: str  # DATABASE_URL
    url: str  # as the app wrote it
    scheme: str
    host: str
    port: int
    scope: str = ""  # the type whose procrun.yaml env (or env_file) names it; "": .env, every type

    @property
    def label(self) -> str:
        """How procrun names it: ``REDIS_URL``, or ``REDIS_URL (worker)`` for a type's own."""
        return f"{self.var} ({self.scope})" if self.scope else self.var


class Skipped(NamedTuple):
    var: str
    url: str
    reason: str


def find(env: Mapping[str, str], own_ports: Iterable[int]) -> tuple[list[Backing], list[Skipped]]:
    """The values that are URLs: proxied ones, and the ones left alone with the reason."""
    own = set(own_ports)
    proxied, skipped = [], []
    for var, value in sorted(env.items()):
        if "://" not in value:
            continue
        backing, reason = judge(var, value, own)
        if backing is not None:
            proxied.append(backing)
        elif reason:
            skipped.append(Skipped(var, value, reason))
    return proxied, skipped


def judge(var: str, value: str, own: set[int]) -> tuple[Backing | None, str]:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None, "not a URL procrun can read"
    scheme = parts.scheme.lower()
    if scheme in TLS_SCHEMES or _tls_query(parts.query):
        return None, "TLS: a proxy would break its certificate and host checks"
    if scheme not in DEFAULT_PORTS:
        return None, f"unknown scheme {scheme}://" if scheme else ""
    host = (parts.hostname or "").lower()
    if not host or host.startswith("/") or "host=/" in parts.query:
        return None, "a unix socket"
    if host not in LOOPBACK:
        return None, f"{host} is not a loopback host"
    port = port or DEFAULT_PORTS[scheme]
    if port in own:
        return None, f"port {port} is one of this session's own (disrupt that type with chaos instead)"
    return Backing(var, value, scheme, host, port), ""


def _tls_query(query: str) -> bool:
    for key, values in parse_qs(query).items():
        if any(v.lower() in TLS_QUERY.get(key.lower(), ()) for v in values):
            return True
    return False


def rewrite(url: str, port: int) -> str:
    """The same URL (user, password, path, query kept) pointing at 127.0.0.1:port."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = (userinfo + "@" if "@" in parts.netloc else "") + f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def shown(url: str) -> str:
    """A URL as procrun prints, stores and reports it: a password is never shown (the app still
    gets it: only what procrun writes is masked)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
