"""Command line: flags, logging to stderr, transport selection.

stdout belongs to the MCP protocol on stdio: nothing here writes to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from server.app import EaselServer
    from server.config import Settings

__all__ = ["main"]

log = logging.getLogger("easel")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="easel-mcp", description="MCP server for image generation.")
    p.add_argument("--transport", choices=("stdio", "sse", "http"), default="stdio",
                   help="stdio (default, for desktop clients), sse (/sse) or http (streamable HTTP at /mcp)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind for sse/http (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port for sse/http (default 8000)")
    p.add_argument("--stateless", action="store_true", help="streamable HTTP without sessions (for replicas)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gallery"]:            # easel-mcp gallery: the web gallery of this store (server.gallery)
        return gallery_main(argv[1:])
    args = parse_args(argv)

    from providers.errors import ConfigError
    from server.config import Settings
    from server.storage import StorageError

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"easel-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(args.verbose, settings.log_format)
    if args.transport != "stdio":
        _refuse_open_bind_without_token(args, settings)

    from server.app import build_server

    signer = None
    if args.transport != "stdio":
        from server.http import link_signer

        signer = link_signer(settings, args.host, args.port)
    try:
        server = build_server(settings, links=signer)
    except (ConfigError, StorageError) as exc:
        print(f"easel-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    _banner(args, settings, server)
    import gc

    # Start-up leaves ~100k long-lived objects (SDK types, schemas); keep them out of the cyclic GC,
    # whose full passes over them cost ~60 ms in the middle of a tool call (bench/run.py, overhead p99).
    gc.freeze()
    if args.transport == "stdio":
        server.run("stdio")
        return
    import anyio

    from server.http import serve_http

    assert signer is not None   # link_signer() gave one above for every transport but stdio
    anyio.run(serve_http, server, settings, args, signer)


def gallery_main(argv: list[str]) -> None:
    """``easel-mcp gallery``: the gallery of this machine's store, on loopback, until Ctrl-C."""
    import uvicorn

    from providers.errors import ConfigError
    from server.app import make_storage, with_catalog
    from server.config import Settings
    from server.gallery import make_gallery, standalone_app
    from server.http import is_loopback
    from server.storage import StorageError

    p = argparse.ArgumentParser(prog="easel-mcp gallery",
                                description="Serve the image gallery of this store on loopback and print its link.")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--open", action="store_true", help="open the link in the default browser")
    args = p.parse_args(argv)
    configure_logging(0)
    if not is_loopback(args.host):
        refusal = ("easel-mcp gallery: serves on loopback only; for a shared gallery run the HTTP transport "
                   "(easel-mcp --transport http) with EASEL_AUTH_TOKEN.")
        print(refusal, file=sys.stderr)
        raise SystemExit(2)
    try:
        settings = Settings.from_env()
        storage = with_catalog(make_storage(settings), settings)
    except (ConfigError, StorageError) as exc:
        print(f"easel-mcp gallery: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        refusal = f"easel-mcp gallery: cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port 0."
        print(refusal, file=sys.stderr)
        raise SystemExit(2) from None
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    gallery = make_gallery(storage, settings, f"http://{shown}:{port}")
    link = gallery.link()
    # a terminal command, not the MCP server: the link goes to stdout on purpose, so a script can read it
    sys.stdout.write(f"easel-mcp gallery of {settings.storage.dir}\n  open: {link}\n  (the link works for "
                     f"{settings.gallery.link_ttl // 3600} h; Ctrl-C stops the gallery)\n")
    sys.stdout.flush()
    if args.open:
        import webbrowser

        webbrowser.open(link)
    config = uvicorn.Config(standalone_app(gallery, storage), log_level="warning", access_log=False,
                            log_config=None)
    uvicorn.Server(config).run(sockets=[sock])


def configure_logging(verbose: int, fmt: str = "text") -> None:
    """Everything goes to stderr: text lines, or one JSON object per line (EASEL_LOG_FORMAT=json)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(handlers=[handler], force=True,
                        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logging.getLogger("easel").setLevel(logging.DEBUG if verbose else logging.INFO)


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extras}`` on one line; tracebacks go in ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _refuse_open_bind_without_token(args: argparse.Namespace, settings: Settings) -> None:
    from server.http import is_loopback

    if is_loopback(args.host) or settings.http.auth_token:
        return
    message = (f"easel-mcp: refusing to listen on {args.host} without a token: anyone who can reach that "
               "address could use this server and spend its provider credits.\n"
               "  Either set EASEL_AUTH_TOKEN (clients then send 'Authorization: Bearer <token>'; make one with "
               "python -c 'import secrets; print(secrets.token_urlsafe(32))'),\n"
               "  or bind to this machine only with --host 127.0.0.1.")
    print(message, file=sys.stderr)
    raise SystemExit(2)


def _banner(args: argparse.Namespace, settings: Settings, server: EaselServer) -> None:
    """What started, where images go, which providers have keys: four lines for a person at a terminal,
    one log line when stderr is not a terminal (a client's or a service manager's log)."""
    from providers import provider_classes

    keyed = settings.providers.keyed()
    if args.transport == "stdio":
        endpoint = None
    else:
        path = "/sse" if args.transport == "sse" else "/mcp"
        endpoint = f"http://{args.host}:{args.port}{path}"
    if settings.log_format == "json":
        log.info("easel-mcp started", extra={
            "version": server.version, "transport": args.transport, "endpoint": endpoint,
            "storage": settings.storage.backend, "providers_with_keys": keyed,
            "auth": "bearer" if settings.http.auth_token else "none"})
        return
    if not _is_terminal(sys.stderr):  # started by a client or a service manager: one line in its log
        log.info("easel-mcp %s started: transport %s%s, images in %s, providers with keys: %s, auth %s%s",
                 server.version, args.transport, f" at {endpoint}" if endpoint else "",
                 _where(settings), ", ".join(keyed) or "none",
                 "bearer" if settings.http.auth_token else "none",
                 # never the signed link itself: a log must not hold it
                 ", gallery at /gallery (signed links from the gallery_link tool)" if endpoint else "")
        return
    lines = [f"easel-mcp {server.version}: MCP image generation server",
             f"  images stored in: {_where(settings)}",
             "  providers with keys: " + (", ".join(keyed) if keyed else
                                          "none (set " + ", ".join(cls.key_env for cls in provider_classes().values()) + ")")]
    if args.transport == "stdio":
        lines.append("  speaking MCP on stdin/stdout; start it from an MCP client "
                     "(see claude_config.example.json), not by hand")
        lines.append("  gallery: run `easel-mcp gallery` in a terminal to browse the stored images")
    else:
        kind = "SSE" if args.transport == "sse" else "streamable HTTP"
        lines.append(f"  {kind} endpoint: {endpoint}   health: /healthz   readiness: /readyz")
        lines += _gallery_line(args, settings, server)
        lines.append("  auth: " + ("bearer token (EASEL_AUTH_TOKEN)" if settings.http.auth_token
                                   else "none (loopback only; set EASEL_AUTH_TOKEN to require a token)"))
    print("\n".join(lines), file=sys.stderr, flush=True)


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def _gallery_line(args: argparse.Namespace, settings: Settings, server: EaselServer) -> list[str]:
    """The signed gallery link, for the banner at a terminal only: a log file must never hold it."""
    from server.gallery import gallery_for
    from server.http import public_base

    return [f"  gallery: {gallery_for(server, settings, public_base(settings, args.host, args.port)).link()}"]


def _where(settings: Settings) -> str:
    if settings.storage.backend == "oss":
        oss = settings.storage.oss
        return f"Aliyun OSS bucket {oss.bucket or '?'}/{oss.base_path} (fallback: {settings.storage.dir})"
    return str(settings.storage.dir)
