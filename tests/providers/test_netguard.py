"""The fetch guard: which addresses pass, which origins are trusted, and that the connection goes
to the address that was checked (DNS rebinding), over real loopback sockets."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import anyio
import httpx
import pytest

from providers._netguard import (
    HOST_POOLS,
    POOL_LIMITS,
    FetchPolicy,
    FetchRefused,
    GuardedTransport,
    address_allowed,
    guarded_client,
)
from tests.fakes._server import LoopbackServer
from tests.fakes.file_host import FileHost

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.215.14"   # a public address; tests can never reach it (tests/conftest.py keeps them on loopback)


@pytest.fixture
def host() -> Iterator[FileHost]:
    fake = FileHost()
    with fake.server.running():
        yield fake


# --------------------------------------------------------------------------- the address policy

@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.8", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200", "0.0.0.0",
    "224.0.0.1", "::1", "::", "fe80::1", "fd00:ec2::254", "ff02::1",
    # IPv6 forms that carry a private IPv4 address
    "::127.0.0.1", "::169.254.169.254", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a9fe:a9fe::", "2002:a00:1::",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",     # Teredo
    "64:ff9b:1::a00:1",                          # local-use NAT64
    "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",     # IPv4-translated (SIIT, RFC 6145)
])
def test_private_addresses_and_ipv6_forms_embedding_them_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::1", "::ffff:0:808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert address_allowed(ipaddress.ip_address(address))


def test_trust_is_by_origin_and_allowed_hosts_by_host_or_host_and_port() -> None:
    policy = FetchPolicy.build(["images.internal", "127.0.0.1:8713", "[::1]:9000"],
                               ["https://api.example.com/v1", "http://127.0.0.1:5000", None])
    assert policy.trusts("https", "api.example.com", 443)
    assert not policy.trusts("https", "api.example.com", 8443)
    assert not policy.trusts("http", "api.example.com", 443)
    assert policy.trusts("http", "127.0.0.1", 5000) and not policy.trusts("http", "127.0.0.1", 5001)
    assert policy.trusts("https", "images.internal", 1234)
    assert policy.trusts("http", "127.0.0.1", 8713)
    assert policy.trusts("http", "::1", 9000) and not policy.trusts("http", "::1", 9001)


# --------------------------------------------------------------------------- over loopback

async def test_an_untrusted_loopback_url_is_refused_before_any_connection(host: FileHost) -> None:
    async with guarded_client(FetchPolicy()) as client:
        with pytest.raises(FetchRefused, match="private, loopback"):
            await client.get(f"{host.url}/secret")
    assert host.seen == []


async def test_trusted_origins_and_allowed_hosts_are_fetched(host: FileHost) -> None:
    for policy in (FetchPolicy().trusting(host.url), FetchPolicy.build([f"127.0.0.1:{host.port}"]),
                   FetchPolicy.build(["127.0.0.1"])):
        async with guarded_client(policy) as client:
            assert (await client.get(f"{host.url}/a")).text == "secret from /a"
    async with guarded_client(FetchPolicy.build([f"127.0.0.1:{host.port + 1}"])) as client:
        with pytest.raises(FetchRefused):
            await client.get(f"{host.url}/a")


async def test_every_redirect_hop_is_checked(host: FileHost) -> None:
    start = FileHost(redirect_to=f"{host.url}/secret")
    with start.server.running():
        async with guarded_client(FetchPolicy().trusting(start.url), follow_redirects=True) as client:
            with pytest.raises(FetchRefused, match="private, loopback"):
                await client.get(f"{start.url}/start")
    assert [path for path, _ in start.seen] == ["/start"] and host.seen == []


async def test_the_connection_goes_to_the_checked_address_not_a_second_dns_answer(host: FileHost) -> None:
    """DNS rebinding: the guard's resolver says 'localhost' is public; the system resolver (which httpx
    would ask again when connecting by name) says it is 127.0.0.1, where the secret is served."""
    answers: list[str] = []

    async def rebinding_dns(name: str, port: int) -> list[str]:
        answers.append(name)
        return [PUBLIC]

    async with guarded_client(FetchPolicy(resolver=rebinding_dns)) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://localhost:{host.port}/secret")
    assert answers == ["localhost"] and host.seen == []
    assert f"tried to reach {PUBLIC!r}" in " ".join(causes(caught.value))   # it connected to the checked IP


def causes(exc: BaseException | None) -> Iterator[str]:
    while exc is not None:
        yield str(exc)
        exc = exc.__cause__ or exc.__context__


async def test_a_name_with_any_private_answer_is_refused(host: FileHost) -> None:
    async def dns(name: str, port: int) -> list[str]:
        return [PUBLIC, "::ffff:127.0.0.1"]

    async with guarded_client(FetchPolicy(resolver=dns)) as client:
        with pytest.raises(FetchRefused, match=r"localhost \(127\.0\.0\.1\)"):
            await client.get(f"http://localhost:{host.port}/secret")
    assert host.seen == []


async def test_a_pinned_request_keeps_the_name_for_host_header_and_tls() -> None:
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"ok")

    async def dns(name: str, port: int) -> list[str]:
        return ["2606:4700:4700::1111", PUBLIC]

    transport = GuardedTransport(FetchPolicy(resolver=dns), pinned=httpx.MockTransport(record))
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        await client.get("https://images.example.com:8443/a.png?x=1")
    [request] = sent
    assert str(request.url) == "https://[2606:4700:4700::1111]:8443/a.png?x=1"
    assert request.headers["host"] == "images.example.com:8443"
    assert request.extensions["sni_hostname"] == "images.example.com"


async def test_each_host_name_keeps_its_own_connections() -> None:
    """Downloads from a provider's file host keep their connections alive, in a pool per host name: two names
    on one address never share one (a TLS connection verified for one name must not carry the other's
    requests), and past HOST_POOLS names the rest keep nothing alive, so the pools stay bounded."""
    pools: list[list[str]] = []

    def host_pool() -> httpx.AsyncBaseTransport:
        seen: list[str] = []
        pools.append(seen)
        return httpx.MockTransport(lambda request: (seen.append(request.extensions["sni_hostname"]),
                                                    httpx.Response(200))[1])

    unpooled: list[str] = []

    async def dns(name: str, port: int) -> list[str]:
        return [PUBLIC]

    transport = GuardedTransport(FetchPolicy(resolver=dns), host_pool=host_pool, pinned=httpx.MockTransport(
        lambda request: (unpooled.append(request.headers["host"]), httpx.Response(200))[1]))
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        for name in ("cdn.example.com", "evil.example.com", "CDN.example.com"):
            await client.get(f"https://{name}/out.png")
        assert pools == [["cdn.example.com", "cdn.example.com"], ["evil.example.com"]]
        for i in range(HOST_POOLS):
            await client.get(f"https://h{i}.example.com/out.png")
    assert len(pools) == HOST_POOLS
    assert unpooled == [f"h{i}.example.com" for i in range(HOST_POOLS - 2, HOST_POOLS)]


def test_a_guarded_client_pools_its_file_hosts_connections() -> None:
    """The default pool per host keeps connections alive (the one for names past the bound does not)."""
    transport = GuardedTransport(FetchPolicy())
    pool = transport._transport_for("cdn.example.com")
    assert isinstance(pool, httpx.AsyncHTTPTransport)
    assert pool._pool._max_keepalive_connections == POOL_LIMITS.max_keepalive_connections   # httpcore's pool
    assert transport._transport_for("cdn.example.com") is pool
    assert transport._transport_for("other.example.com") is not pool


async def test_an_operators_proxy_still_carries_checked_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FileHost()
    with proxy.server.running():
        monkeypatch.setenv("HTTP_PROXY", proxy.url)

        async def dns(name: str, port: int) -> list[str]:
            return {"images.example.com": [PUBLIC]}.get(name, ["10.1.2.3"])

        async with guarded_client(FetchPolicy(resolver=dns)) as client:
            reply = await client.get("http://images.example.com/a.png")
            with pytest.raises(FetchRefused):
                await client.get("http://intranet.example.com/a.png")
    assert reply.text == "secret from http://images.example.com/a.png"
    assert [(path, h["host"]) for path, h in proxy.seen] == [("http://images.example.com/a.png", "images.example.com")]


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "http://user:pw@example.com/a.png",
                                 "http://example.com:99999/a.png"])
async def test_other_schemes_credentials_and_impossible_ports_are_refused(url: str) -> None:
    async with guarded_client(FetchPolicy()) as client:
        with pytest.raises((FetchRefused, httpx.UnsupportedProtocol)):
            await client.get(url)


@pytest.mark.parametrize("vendor", ["replicate", "modelscope", "dashscope", "ideogram"])
async def test_every_vendor_downloads_through_the_guard_and_trusts_only_its_own_endpoint(
        vendor: str, host: FileHost) -> None:
    """Each vendor's client: its configured endpoint's origin is trusted, another loopback origin is
    not (OutputRefused, not retried: the file host sees nothing), unless the operator allowed it."""
    from providers import provider_classes
    from providers.errors import OutputRefused
    from tests.providers._support import fast_config, opened

    endpoint = FileHost()
    with endpoint.server.running():
        base = endpoint.url + ("/api/v1" if vendor == "dashscope" else "")
        async with opened(provider_classes()[vendor], fast_config(base, "key")) as provider:
            data, _ = await provider.fetch_output(f"{endpoint.url}/out.png")
            with pytest.raises(OutputRefused, match="private, loopback"):
                await provider.fetch_output(f"{host.url}/secret")
        allowed = fast_config(base, "key", fetch=FetchPolicy.build([f"127.0.0.1:{host.port}"]))
        async with opened(provider_classes()[vendor], allowed) as provider:
            assert (await provider.fetch_output(f"{host.url}/secret"))[0] == b"secret from /secret"
    assert data == b"secret from /out.png"
    assert [path for path, _ in host.seen] == ["/secret"]


@pytest.mark.parametrize("url", ["http://[::1/x", "https://xn--/x", "http://example.com:99999/x"])
async def test_a_malformed_output_url_is_a_refusal_not_a_crash(url: str) -> None:
    from providers.errors import OutputRefused
    from providers.replicate import ReplicateProvider
    from tests.providers._support import fast_config, opened

    async with opened(ReplicateProvider, fast_config("http://127.0.0.1:9", "key")) as provider:
        with pytest.raises(OutputRefused, match="not a valid URL|port 99999"):
            await provider.fetch_output(url)


async def test_a_resolver_that_hangs_is_bounded() -> None:
    import anyio

    async def hanging_dns(name: str, port: int) -> list[str]:
        await anyio.sleep(30)
        return [PUBLIC]

    with anyio.fail_after(5):
        async with guarded_client(FetchPolicy(resolver=hanging_dns, resolve_timeout=0.05)) as client:
            with pytest.raises(httpx.ConnectTimeout, match="resolving 'images.example.com'"):
                await client.get("https://images.example.com/a.png")


async def test_an_https_proxy_is_asked_to_connect_to_the_checked_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS through an operator's proxy is a CONNECT tunnel to the name; this proxy records the CONNECT
    and declines it (no TLS needed to see that the guard let the request through to the proxy)."""
    import anyio

    seen: list[bytes] = []

    async def proxy(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            with anyio.move_on_after(5):
                while b"\r\n\r\n" not in head:
                    head += await stream.receive()
            seen.append(head.split(b"\r\n", 1)[0])
            await stream.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    async def dns(name: str, port: int) -> list[str]:
        return {"images.example.com": [PUBLIC]}.get(name, ["10.1.2.3"])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy)
        with anyio.fail_after(10):
            async with guarded_client(FetchPolicy(resolver=dns)) as client:
                with pytest.raises(httpx.ProxyError):
                    await client.get("https://images.example.com/a.png")
                with pytest.raises(FetchRefused):
                    await client.get("https://intranet.example.com/a.png")
        tg.cancel_scope.cancel()
    assert seen == [b"CONNECT images.example.com:443 HTTP/1.1"]


class Burst:
    """A loopback host that answers each request once ``size`` have arrived (one burst in flight at once),
    and records which connection (client address) carried each."""

    def __init__(self, size: int) -> None:
        self.size, self.arrived = size, 0
        self.connections: set[tuple[str, int]] = set()
        self.server = LoopbackServer(self)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        self.connections.add(tuple(scope["client"]))
        self.arrived += 1
        goal = -(-self.arrived // self.size) * self.size   # the last request of this burst
        for _ in range(500):                               # bounded: 5 s
            if self.arrived >= goal:
                break
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("via_proxy", [False, True], ids=["direct", "operator-proxy"])
async def test_a_trusted_host_keeps_a_bursts_connections_alive_for_the_next_burst(
        via_proxy: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 calls at once to a vendor's API (a provider runs up to 64), then 40 more: the second burst goes over the
    first one's connections, directly and through an operator's proxy. With httpx's default of 20 kept alive,
    httpcore closes every connection that goes idle while the pool holds more than 20: 20 new ones (new TLS
    handshakes, against a real vendor) for the second burst."""
    burst = Burst(40)
    with burst.server.running():
        base = burst.server.url
        if via_proxy:
            monkeypatch.setenv("HTTP_PROXY", burst.server.url)
            base = "http://api.example.com"
        with anyio.fail_after(30):
            async with guarded_client(FetchPolicy().trusting(base)) as client:
                for _ in range(2):
                    async with anyio.create_task_group() as tg:
                        for n in range(40):
                            tg.start_soon(client.get, f"{base}/v1/predictions/{n}")
    assert burst.arrived == 80 and len(burst.connections) == 40
