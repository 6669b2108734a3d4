"""HTTP transports: SSE and streamable HTTP apps, auth, health, image links, served by uvicorn.

* Auth (server.auth, given to the server when it is built): with ``EASEL_AUTH_TOKEN`` set,
  /mcp and /sse (and /messages/) need a bearer token. /healthz, /readyz and /images/… are
  never behind it: the first two say nothing secret, image links carry their own signature
  (server.links; the signer is made by ``link_signer`` before the server is built).
* DNS-rebinding protection stays on: loopback Host/Origin values are always
  accepted, plus ``EASEL_ALLOWED_HOSTS`` / ``EASEL_ALLOWED_ORIGINS``. Only a
  non-loopback bind with no allowed hosts configured turns the check off (it
  could not know which names clients use), and that case needs a token anyway.
* Request bodies above ``EASEL_MAX_BODY_BYTES`` get 413 from the SDK.
* Graceful shutdown (server.drain): on SIGTERM the listener stays up while new
  sessions and tool calls are refused and /readyz says 503; running calls get
  ``EASEL_SHUTDOWN_GRACE`` seconds and their answers are delivered, then uvicorn exits.
* Limits (server.limits): connections, request head/body deadlines, keep-alive,
  open sessions and their idle expiry.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from server.config import Settings
from server.drain import DrainGate, DrainingServer
from server.limits import SseSessions, guarded_protocol, track_sse_requests
from server.links import LinkSigner, link_secret
from server.storage import ImageNotFound, StorageError, parse_image_id

if TYPE_CHECKING:   # only the type: the server is handed in, so this module imports nothing of the app
    from server.app import EaselServer

__all__ = ["add_health_routes", "add_image_route", "build_app", "is_loopback", "link_signer", "readiness",
           "serve_http", "transport_security"]

log = logging.getLogger("easel.http")

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
_HAS_PORT = re.compile(r":(\d+|\*)$")
SHUTDOWN_CLOSE_TIMEOUT = 3     # after the drain: open SSE streams are closed after this long


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings:
    if not settings.http.allowed_hosts and not is_loopback(host):
        log.warning("DNS-rebinding protection is off: bound to %s with no EASEL_ALLOWED_HOSTS. "
                    "Set it to the host names clients use (e.g. img.example.com).", host)
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)

    def with_any_port(values: tuple[str, ...]) -> list[str]:
        out: list[str] = []
        for v in values:
            out += [v] if _HAS_PORT.search(v) else [v, f"{v}:*"]
        return out

    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[*LOOPBACK_HOSTS, *with_any_port(settings.http.allowed_hosts)],
                                     allowed_origins=[*LOOPBACK_ORIGINS, *with_any_port(settings.http.allowed_origins)])


async def readiness(server: EaselServer, settings: Settings) -> tuple[bool, dict[str, Any]]:
    """Is this replica fit for traffic? Storage usable and not shutting down. Nothing secret."""
    storage = server.storage
    kind = str(getattr(storage, "kind", type(storage).__name__))
    ok, checked = True, True
    try:
        with anyio.fail_after(5):
            ready = getattr(storage, "ready", None)
            check_writable = getattr(storage, "check_writable", None)
            if callable(ready):
                ok = (await ready()) is not False
            elif callable(check_writable):
                await anyio.to_thread.run_sync(check_writable)
            else:
                checked = False
    except Exception as exc:  # TimeoutError too; the detail goes to the log, not to the unauthenticated caller
        log.warning("readiness: %s storage is not usable: %s", kind, exc)
        ok = False
    body: dict[str, Any] = {
        "status": "draining" if server.draining else "ready" if ok else "not ready",
        "version": server.version,
        "providers_with_keys": settings.providers.keyed(),
        "storage": {"kind": kind, "usable": ok, **({} if checked else {"checked": False})},
    }
    return ok and not server.draining, body


def add_health_routes(server: EaselServer, settings: Settings) -> None:
    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @server.custom_route("/readyz", methods=["GET"])
    async def readyz(_: Request) -> JSONResponse:
        ok, body = await readiness(server, settings)
        return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})


def add_image_route(server: EaselServer, signer: LinkSigner) -> None:
    """GET /images/{image_id}?exp=…&sig=…: the stored bytes, for a browser, through a signed link."""

    @server.custom_route("/images/{image_id}", methods=["GET"])
    async def image(request: Request) -> Response:
        image_id = request.path_params["image_id"]
        try:
            parse_image_id(image_id)          # before anything touches storage
        except ImageNotFound:
            return PlainTextResponse("No such image.", status_code=404)
        exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
        problem = signer.verify(image_id, exp, sig)
        if problem == "expired":
            return PlainTextResponse("This image link has expired; ask for the image again.", status_code=403)
        if problem:
            return PlainTextResponse("This image link is not valid.", status_code=403)
        try:
            data, mime = await server.storage.get(image_id)
        except ImageNotFound:
            return PlainTextResponse("No such image.", status_code=404)
        except StorageError as exc:
            log.warning("image link for %s: storage failed: %s", image_id, exc)
            return PlainTextResponse("Image storage is unavailable; try again later.", status_code=503)
        max_age = max(0, int(exp or 0) - int(time.time()))
        return Response(data, media_type=mime, headers={
            "Cache-Control": f"private, max-age={max_age}, immutable",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "Referrer-Policy": "no-referrer",
        })


def public_base(settings: Settings, host: str, port: int) -> str:
    if settings.http.public_url:
        return settings.http.public_url
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        log.warning("image links point at http://%s:%d; set EASEL_PUBLIC_URL to the address people use", shown, port)
    return f"http://{shown}:{port}"


def link_signer(settings: Settings, host: str, port: int) -> LinkSigner:
    """The signer of browser links to stored images. The server is built with it (server.app puts its
    ``url`` in the application state, so results of local images get signed http links instead of
    file://) and the image route checks what it signed."""
    return LinkSigner(link_secret(settings.http), public_base(settings, host, port), settings.http.link_ttl)


def build_app(server: EaselServer, settings: Settings, args: argparse.Namespace,  # type: ignore[no-untyped-def]
              signer: LinkSigner):
    add_health_routes(server, settings)
    add_image_route(server, signer)
    from server.gallery import mount as mount_gallery

    mount_gallery(server, settings, signer.base_url)    # GET /gallery and its API (server.gallery)
    options = {"host": args.host, "max_request_body_size": settings.http.max_body_bytes,
               "transport_security": transport_security(settings, args.host)}
    if args.transport == "sse":
        server.middleware.append(track_sse_requests)
        return SseSessions(server.sse_app(**options), max_sessions=settings.limits.max_sessions,
                           idle_timeout=settings.limits.session_idle_timeout)
    return server.streamable_http_app(stateless_http=args.stateless, max_sessions=settings.limits.max_sessions,
                                      session_idle_timeout=settings.limits.session_idle_timeout, **options)


async def serve_http(server: EaselServer, settings: Settings, args: argparse.Namespace,
                     signer: LinkSigner) -> None:
    gate = DrainGate(build_app(server, settings, args, signer), server,
                     "stateless" if args.transport == "http" and args.stateless else args.transport)
    config = uvicorn.Config(gate, host=args.host, port=args.port, log_level="warning", access_log=False,
                            log_config=None,  # uvicorn logs through our handlers (JSON when asked)
                            http=guarded_protocol(settings.limits.header_timeout, settings.limits.body_timeout),
                            # uvicorn counts the connection asking, so N + 1 serves N connections
                            limit_concurrency=settings.limits.max_connections + 1,
                            timeout_keep_alive=settings.limits.keepalive_timeout,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=SHUTDOWN_CLOSE_TIMEOUT)
    await DrainingServer(config, server, gate, settings.http.shutdown_grace).serve()
