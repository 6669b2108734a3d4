"""Bearer-token auth for the HTTP transports (stdio has no auth: the client started the process).

With ``EASEL_AUTH_TOKEN`` set, /mcp and /sse (and /messages/) need
``Authorization: Bearer <token>``; the SDK answers 401 with ``WWW-Authenticate`` otherwise.
The server is built with these options (server.app); the HTTP routes (server.http) never
need them, so neither of those modules imports the other for auth.
"""

from __future__ import annotations

import hmac
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from server.config import Settings

__all__ = ["StaticTokenVerifier", "auth_options"]


class StaticTokenVerifier:
    """One shared bearer token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def __repr__(self) -> str:
        return "StaticTokenVerifier(<token>)"

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token="static", client_id="easel-token", scopes=[])
        return None


def auth_options(settings: Settings) -> dict[str, Any]:
    """MCPServer constructor arguments for bearer-token auth (empty without a token)."""
    if not settings.http.auth_token:
        return {}
    return {"token_verifier": StaticTokenVerifier(settings.http.auth_token),
            # issuer_url is required by the SDK but unused: no OAuth server, no metadata routes.
            "auth": AuthSettings(issuer_url=AnyHttpUrl("https://easel-mcp.invalid"), resource_server_url=None)}
