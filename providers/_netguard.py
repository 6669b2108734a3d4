"""The fetch guard (private): where the server may fetch from, and connections that go only there.

Every URL the server fetches on someone else's say-so passes here: reference images a
client names (``server/inputs.py``) and every file a provider's answer points at (all
vendors, all tools, redirect hops included). A model's output URL is chosen by whoever
made the model, so it is as untrusted as a client's.

Trusted without a check: the origins (scheme, host, port) of the operator's own
provider endpoints (``*_BASE_URL``, or each vendor's default) and the hosts in
``EASEL_ALLOWED_FETCH_HOSTS`` (``host`` for any port, ``host:port`` for one). Anything
else must be http(s) without credentials and resolve only to public addresses: no
private, loopback, link-local (cloud metadata), shared, reserved or multicast address,
including IPv6 forms that carry one of those in an embedded IPv4 address
(``::ffff:a.b.c.d``, ``::a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``;
Teredo and local-use NAT64 are refused outright).

DNS rebinding: the name is resolved once, every address is checked, and the connection
goes to a checked address (the request is sent to that IP, with the Host header and TLS
SNI/certificate name kept as the original name). A DNS answer that changes between the
check and the connection is never asked for. Pinned connections are kept alive in a pool per
host name (bounded), so a TLS session verified for one name never carries a request for another.

An operator's outbound proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, honouring
``NO_PROXY``) keeps working: the name is still resolved and checked here, but the proxy
connects to it, so pinning the address is then the proxy's business.

Refusals raise ``FetchRefused`` (an ``httpx.TransportError``, so code that already
handles "could not connect" stays correct) with a message safe to show.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

__all__ = ["FetchPolicy", "FetchRefused", "GuardedTransport", "address_allowed", "guarded_client"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_DEFAULT_PORT = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")            # RFC 6052: the IPv4 address is the low 32 bits
_V4_COMPATIBLE = ipaddress.ip_network("::/96")            # deprecated IPv4-compatible form
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 6145): a translator sends it to the IPv4
_NOT_GLOBAL_V6 = (ipaddress.ip_network("64:ff9b:1::/48"),)  # RFC 8215 local-use NAT64 (Python calls it global)
ALLOW_HINT = "an operator can allow a host with EASEL_ALLOWED_FETCH_HOSTS"


class FetchRefused(httpx.TransportError):
    """The guard will not fetch this URL; the message says why (and never holds a secret)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order, once each."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, in the forms that route to them."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in _NAT64 or address in _V4_TRANSLATED or (address in _V4_COMPATIBLE and int(address) > 1):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def _public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def address_allowed(address: Address) -> bool:
    """True for a public unicast address, and for IPv6 only when every IPv4 address it embeds is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:     # ::ffff:a.b.c.d is a.b.c.d, nothing else
            return _public(address.ipv4_mapped)
        if any(address in net for net in _NOT_GLOBAL_V6):
            return False
        if not all(_public(v4) for v4 in embedded_ipv4(address)):
            return False
    return _public(address)


def _origin(url: str) -> tuple[str, str, int] | None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORT or not host:
        return None
    return scheme, host, port or _DEFAULT_PORT[scheme]


def _allowed_entry(entry: str) -> tuple[str, int | None]:
    """``host`` (any port) or ``host:port``; IPv6 as ``[addr]`` or ``[addr]:port`` (or a bare address)."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


@dataclass(frozen=True)
class FetchPolicy:
    """What may be fetched: trusted origins, operator-allowed hosts, and public addresses."""

    allowed_hosts: tuple[str, ...] = ()                 # EASEL_ALLOWED_FETCH_HOSTS entries
    trusted_origins: frozenset[tuple[str, str, int]] = frozenset()
    resolver: Resolver | None = field(default=None, compare=False)   # tests inject DNS answers
    resolve_timeout: float = 10.0   # seconds; the client's own timeouts start at the connection

    @classmethod
    def build(cls, allowed_hosts: Iterable[str] = (), trusted_urls: Iterable[str | None] = ()) -> FetchPolicy:
        return cls(tuple(h.strip().lower() for h in allowed_hosts if h.strip())).trusting(*trusted_urls)

    def trusting(self, *urls: str | None) -> FetchPolicy:
        """This policy, also trusting the origins of ``urls`` (an operator's endpoints)."""
        origins = {o for u in urls if u and (o := _origin(u)) is not None}
        return self if origins <= self.trusted_origins else replace(
            self, trusted_origins=self.trusted_origins | origins)

    def trusts(self, scheme: str, host: str, port: int) -> bool:
        if (scheme, host, port) in self.trusted_origins:
            return True
        for entry in self.allowed_hosts:
            allowed_host, allowed_port = _allowed_entry(entry)
            if allowed_host == host and allowed_port in (None, port):
                return True
        return False

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses to connect to, each one checked; FetchRefused if any is not allowed."""
        try:
            addresses: list[Address] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                with anyio.fail_after(self.resolve_timeout):
                    names = await (self.resolver or system_resolver)(host, port)
                addresses = [ipaddress.ip_address(a) for a in names]
            except TimeoutError:   # transient: callers that retry connection errors retry this
                raise httpx.ConnectTimeout(f"resolving {host!r} took over {self.resolve_timeout:g} s") from None
            except (OSError, UnicodeError, ValueError):
                raise FetchRefused(f"the host {host!r} could not be resolved") from None
            if not addresses:
                raise FetchRefused(f"the host {host!r} could not be resolved") from None
        for address in addresses:
            if not address_allowed(address):
                plain = str(getattr(address, "ipv4_mapped", None) or address)
                shown = host if host == plain else f"{host} ({plain})"
                raise FetchRefused(f"the host {shown!r} is a private, loopback, link-local or reserved "
                                   f"address; only public hosts are fetched ({ALLOW_HINT})")
        return addresses


#: Connection pools for the hosts the operator trusts (a vendor's API, its own file host), directly or through
#: the operator's proxy when one is set: keep alive as many connections as a process runs calls at once (a
#: provider's concurrency is at most 64). httpx's default keeps 20,
#: and httpcore 1.0.9 closes every connection that goes idle while its pool holds more than that (it compares
#: all connections, not the idle ones, with the limit): in a burst of 50 calls each connection freed by a
#: create was closed at once, and the next request opened a new one.
POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)

#: Host names whose checked addresses get a pool of their own (a provider's file hosts, reference images'
#: hosts); beyond this many, a name's requests keep no connection alive, so the pools stay bounded.
HOST_POOLS = 16


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that fetches only what ``policy`` allows, connecting to the checked address."""

    def __init__(self, policy: FetchPolicy, *, verify: ssl.SSLContext | bool = True,
                 pinned: httpx.AsyncBaseTransport | None = None,
                 host_pool: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        """Tests watch the transports that send requests to checked addresses: ``pinned`` is the one that keeps
        nothing alive (given alone, it carries every such request), ``host_pool`` makes each host's own."""
        self.policy = policy
        self._verify = verify
        self._trusted = httpx.AsyncHTTPTransport(verify=verify, limits=POOL_LIMITS)
        # Requests to checked addresses go by IP, with the name in Host and SNI. A kept-alive TLS connection
        # verified for one name must never carry a request for another name on the same address, so each host
        # name gets its own pool (connections kept alive: a provider's file host is fetched once per image),
        # up to HOST_POOLS names; further names share one that keeps nothing alive.
        self._pinned = pinned or httpx.AsyncHTTPTransport(verify=verify,
                                                          limits=httpx.Limits(max_keepalive_connections=0))
        self._host_pool = host_pool or (None if pinned is not None else self._new_host_pool)
        self._by_host: dict[str, httpx.AsyncBaseTransport] = {}
        self._proxy_env = urllib.request.getproxies_environment()   # as httpx reads them
        self._via_proxy: dict[str, httpx.AsyncHTTPTransport] = {}

    def _new_host_pool(self) -> httpx.AsyncBaseTransport:
        if self._verify is True:   # one TLS context for every host's pool (each costs ~40 ms to build)
            self._verify = httpx.create_ssl_context()
        return httpx.AsyncHTTPTransport(verify=self._verify, limits=POOL_LIMITS)

    def _transport_for(self, host: str) -> httpx.AsyncBaseTransport:
        """The pool for ``host``'s checked addresses (shared by nothing else), or the one keeping nothing alive."""
        transport = self._by_host.get(host)
        if transport is None and self._host_pool is not None and len(self._by_host) < HOST_POOLS:
            transport = self._by_host[host] = self._host_pool()
        return transport or self._pinned

    def _proxy_for(self, url: httpx.URL, host: str) -> httpx.AsyncHTTPTransport | None:
        proxy = self._proxy_env.get(url.scheme) or self._proxy_env.get("all")
        # proxy_bypass_environment is what httpx's NO_PROXY handling mirrors; typeshed omits it (undocumented)
        if not proxy or urllib.request.proxy_bypass_environment(host, self._proxy_env):  # type: ignore[attr-defined]
            return None
        if proxy not in self._via_proxy:
            self._via_proxy[proxy] = httpx.AsyncHTTPTransport(verify=self._verify, proxy=proxy, limits=POOL_LIMITS)
        return self._via_proxy[proxy]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in _DEFAULT_PORT:
            raise FetchRefused(f"only http(s) URLs are fetched, not {url.scheme or 'a relative'} URL")
        if url.userinfo:
            raise FetchRefused("URLs with credentials are not fetched")
        host = url.raw_host.decode("ascii").lower()   # the A-label form DNS and SNI use (url.host may not decode)
        port = url.port or _DEFAULT_PORT[url.scheme]
        if not 0 < port < 65536:   # httpx accepts any number here
            raise FetchRefused(f"the URL's port {port} is not a number from 1 to 65535")
        proxy = self._proxy_for(url, host)
        if self.policy.trusts(url.scheme, host, port):
            return await (proxy or self._trusted).handle_async_request(request)
        addresses = await self.policy.resolve(host, port)
        if proxy is not None:   # the proxy connects by name; it was checked all the same
            return await proxy.handle_async_request(request)
        return await self._send_pinned(request, host, addresses)

    async def _send_pinned(self, request: httpx.Request, host: str, addresses: list[Address]) -> httpx.Response:
        extensions: dict[str, Any] = dict(request.extensions)
        if request.url.scheme == "https":
            extensions.setdefault("sni_hostname", host)   # certificate checked for the name, not the IP
        failure: httpx.ConnectError | None = None
        for address in addresses:
            pinned = httpx.Request(request.method, request.url.copy_with(host=str(address)),
                                   headers=request.headers, stream=request.stream, extensions=extensions)
            try:
                return await self._transport_for(host).handle_async_request(pinned)
            except httpx.ConnectError as exc:   # nothing was sent: the next checked address may answer
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        for transport in (self._trusted, self._pinned, *self._by_host.values(), *self._via_proxy.values()):
            await transport.aclose()


def guarded_client(policy: FetchPolicy, *, verify: ssl.SSLContext | bool = True, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient whose every request (redirects included) passes the guard.

    ``trust_env=False``: httpx would otherwise mount the environment's proxies *around* the
    transport and skip the guard; the transport routes to them itself.
    """
    return httpx.AsyncClient(transport=GuardedTransport(policy, verify=verify),
                             trust_env=False, **kwargs)
