"""Command line: flags, logging to stderr, transport selection.

stdout belongs to the MCP protocol on stdio: nothing here writes to it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

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
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("easel").setLevel(logging.DEBUG if args.verbose else logging.INFO)

    from providers.errors import ConfigError
    from server.app import build_server
    from server.config import Settings
    from server.storage import StorageError

    try:
        settings = Settings.from_env()
        server = build_server(settings)
    except (ConfigError, StorageError) as exc:
        print(f"easel-mcp: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    _banner(args, settings, server)
    if args.transport == "stdio":
        server.run("stdio")
        return
    import anyio

    from server.http import serve_http

    anyio.run(serve_http, server, settings, args)


def _banner(args: argparse.Namespace, settings: object, server: object) -> None:
    from server.config import PROVIDER_ENV

    keyed = settings.keyed_providers()  # type: ignore[attr-defined]
    lines = [f"easel-mcp {server.version}: MCP image generation server",  # type: ignore[attr-defined]
             f"  images stored in: {_where(settings)}",
             "  providers with keys: " + (", ".join(keyed) if keyed else
                                          "none (set " + ", ".join(v[0] for v in PROVIDER_ENV.values()) + ")")]
    if args.transport == "stdio":
        lines.append("  speaking MCP on stdin/stdout; start it from an MCP client "
                     "(see claude_config.example.json), not by hand")
    elif args.transport == "sse":
        lines.append(f"  SSE endpoint: http://{args.host}:{args.port}/sse   health: /healthz")
    else:
        lines.append(f"  streamable HTTP endpoint: http://{args.host}:{args.port}/mcp   health: /healthz")
    print("\n".join(lines), file=sys.stderr, flush=True)


def _where(settings: object) -> str:
    if settings.storage == "oss":  # type: ignore[attr-defined]
        return "Aliyun OSS (see OSS_BUCKET)"
    return str(settings.storage_dir)  # type: ignore[attr-defined]
