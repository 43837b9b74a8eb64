"""Value types of the settings that are checked whole at start-up, so that nothing the
configuration says can fail later: URLs of the right scheme, port and form, Redis URLs that
redis-py accepts, host names, MQTT topic prefixes, and mappings whose secret-looking values
are masked.

Errors raised here never quote the value (it may be a secret): they say what is wrong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, AnyUrl, AnyWebsocketUrl, UrlConstraints
from pydantic_core import Url

from .redact import MASK, SECRET_PARAM, redacted, url_secrets

_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_DB_PATH = re.compile(r"^/?\d*$")
_QUOTED = re.compile(r"'(\w+)'")


def _port_in_range(url: Url | AnyUrl) -> None:
    if url.port == 0:
        raise ValueError("port must be between 1 and 65535")


def _real_port(url: Any) -> Any:
    _port_in_range(url)
    return url


def _public(url: Any) -> Any:
    """A URL that carries no credentials (it is shown, e.g. by /v1/venues) and a real port."""
    _port_in_range(url)
    if url_secrets(url):
        raise ValueError(
            "must not carry credentials (user:password@ or a secret query parameter): "
            "this URL is public (shown by the API and in payloads)"
        )
    return url


WebsocketUrl = Annotated[AnyWebsocketUrl, AfterValidator(_public)]
"""``ws://`` or ``wss://``, no credentials."""
HttpUrl = Annotated[AnyHttpUrl, AfterValidator(_public)]
"""``http://`` or ``https://``, no credentials."""
CredentialHttpUrl = Annotated[AnyHttpUrl, AfterValidator(_real_port)]
"""``http://`` or ``https://`` that may carry credentials (a webhook's): never shown whole."""


class RedisUrl(AnyUrl):
    """A Redis URL as redis-py's ``from_url`` takes it: ``redis://``, ``rediss://`` (TLS) or
    ``unix://``; credentials as ``user:password@``, ``:password@`` or ``?password=``. A Redis
    Cluster: ``redis+cluster://host:port`` (``rediss+cluster://``: TLS), one node of it, more
    seed nodes as ``?node=host:port`` arguments (see ``service/store/client.py``).

    ``str()`` is the URL itself (to connect); ``repr()`` masks the credentials."""

    _constraints = UrlConstraints(
        allowed_schemes=["redis", "rediss", "unix", "redis+cluster", "rediss+cluster"]
    )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted(self)!r})"


def _usable_by_redis_py(url: RedisUrl) -> RedisUrl:
    """What ``Redis.from_url`` would refuse only at the first connection: a bad port, a
    database that is not a number, an unknown or malformed query argument."""
    # lazily: redis is only needed once a Redis URL is configured
    from redis.asyncio.connection import ConnectionPool

    _port_in_range(url)
    given = url
    cluster = url.scheme.endswith("+cluster")
    if cluster:
        url = _cluster_node_url(url)
    if url.scheme == "unix":
        if not url.path or url.path == "/":
            raise ValueError("a unix:// URL needs the socket's path, e.g. unix:///run/redis.sock")
    elif not _DB_PATH.match(url.path or ""):
        raise ValueError("the path must be a database number, e.g. redis://host:6379/0")
    elif cluster and (url.path or "/").strip("/") not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only: redis+cluster://host:port")
    try:
        # builds the connection object (no I/O): refuses unknown and malformed arguments
        pool = ConnectionPool.from_url(str(url))
        pool.make_connection()  # type: ignore[no-untyped-call]
    except TypeError as exc:  # "...got an unexpected keyword argument 'x'"
        unknown = _QUOTED.findall(str(exc))[-1:] or ["?"]
        raise ValueError(
            f"not usable by redis-py: unknown query argument {unknown[0]!r} (connection "
            "arguments only, e.g. password, db, socket_timeout)"
        ) from None
    except ValueError as exc:  # redis-py's messages name the argument, never its value
        raise ValueError(f"not usable by redis-py: {exc}") from None
    return given


def _cluster_node_url(url: RedisUrl) -> RedisUrl:
    """A cluster URL's first node as a plain URL, each ``node`` argument checked."""
    plain = "redis" if url.scheme == "redis+cluster" else "rediss"
    rest = []
    for name, value in url.query_params():
        if name != "node":
            rest.append((name, value))
            continue
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("each node argument of a cluster URL must be host:port")
    query = "&".join(f"{name}={value}" for name, value in rest)
    node = plain + str(url)[len(url.scheme) :].split("?", 1)[0]
    return RedisUrl(node + (f"?{query}" if query else ""))


Redis = Annotated[RedisUrl, AfterValidator(_usable_by_redis_py)]


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.removesuffix(".").split(".")
        if len(value) > 253 or not all(_LABEL.match(label) for label in labels):
            raise ValueError("must be a host name or an IP address") from None
    return value


Host = Annotated[str, AfterValidator(_host)]
"""A host name (RFC 1123) or an IPv4/IPv6 address: what a bind or connect can resolve."""


def masked_mapping(value: Any) -> Any:
    """``value`` with the values under secret-looking keys (``apiKey``, ``password``...)
    masked, at any depth: for dumps."""
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and SECRET_PARAM.match(k) else masked_mapping(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked_mapping(v) for v in value]
    return value


def mapping_secrets(value: Any) -> list[str]:
    """The string values under secret-looking keys of ``value``, at any depth."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and SECRET_PARAM.match(k) and isinstance(v, str | int):
                found.append(str(v))
            else:
                found += mapping_secrets(v)
    elif isinstance(value, list):
        for v in value:
            found += mapping_secrets(v)
    return found


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can head our topics, else ``ValueError`` saying why."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError("must be non-empty, without a leading or trailing '/'")
    if prefix.startswith("$"):
        raise ValueError("topics starting with '$' are reserved by the broker")
    bad = {c for c in prefix if c in "+#\x00" or c.isspace()}
    if bad:
        raise ValueError(f"must not contain {sorted(bad)!r}")
    if "" in prefix.split("/"):
        raise ValueError("must not contain an empty level ('//')")
    return prefix


TopicPrefix = Annotated[str, AfterValidator(check_prefix)]
"""What heads every MQTT topic (:mod:`service.publish.mqtt.topics` builds them under it)."""
