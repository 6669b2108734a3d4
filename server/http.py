"""HTTP transports: SSE and streamable HTTP apps, health, served by uvicorn."""

from __future__ import annotations

import argparse
import logging

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.app import EaselServer
from server.config import Settings

__all__ = ["add_health_routes", "serve_http"]

log = logging.getLogger("easel.http")


def add_health_routes(server: EaselServer, settings: Settings) -> None:
    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})


def build_app(server: EaselServer, settings: Settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    add_health_routes(server, settings)
    if args.transport == "sse":
        return server.sse_app(host=args.host)
    return server.streamable_http_app(stateless_http=args.stateless, host=args.host)


async def serve_http(server: EaselServer, settings: Settings, args: argparse.Namespace) -> None:
    app = build_app(server, settings, args)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    await uvicorn.Server(config).serve()
