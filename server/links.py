"""Signed, expiring links to stored images, for browsers (HTTP transports, local storage).

A link is ``<public url>/images/<image id>?exp=<unix seconds>&sig=<hex>`` where
``sig`` is HMAC-SHA256 over ``"<image id>\\n<exp>"``. Nothing in it is guessable
without the secret, a link works only for its own image, and only until ``exp``.
No bearer header is needed, so a person can open it. A link whose ``exp`` lies further
ahead than the configured TTL (plus a little clock skew between replicas) was never
issued by us and is refused.

The secret is ``EASEL_LINK_SECRET`` when set (at least 32 bytes, checked at start-up);
otherwise it is derived from ``EASEL_AUTH_TOKEN`` (HMAC with a fixed label, so replicas sharing a token share
links and the token itself never appears in a link); otherwise it is random per
process (links then die with the process).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from server.config import HttpSettings

__all__ = ["LinkSigner", "link_secret"]

_LABEL = b"easel-mcp image links v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
CLOCK_SKEW = 300   # seconds another replica's clock may run ahead of ours


def link_secret(http: HttpSettings) -> bytes:
    """The signing key: EASEL_LINK_SECRET, else derived from EASEL_AUTH_TOKEN, else random."""
    if http.link_secret:
        return http.link_secret.encode()
    token = http.auth_token
    if token:
        return hmac.new(token.encode(), _LABEL, hashlib.sha256).digest()
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class LinkSigner:
    secret: bytes = field(repr=False)
    base_url: str = ""                      # e.g. https://img.example.com (no trailing slash)
    ttl: int = 7 * 86400                    # seconds a new link stays valid
    clock: Callable[[], float] = time.time

    def sign(self, image_id: str, exp: int) -> str:
        msg = f"{image_id}\n{int(exp)}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def verify(self, image_id: str, exp: str | int | None, sig: str | None) -> str | None:
        """None when the link is good; otherwise why not ("invalid" or "expired")."""
        exp_text = str(exp) if exp is not None else ""
        if not sig or not _HEX64.fullmatch(sig) or not _DIGITS.fullmatch(exp_text):
            return "invalid"
        if not hmac.compare_digest(self.sign(image_id, int(exp_text)), sig):
            return "invalid"
        now = self.clock()
        if int(exp_text) < now:
            return "expired"
        if int(exp_text) > now + self.ttl + CLOCK_SKEW:   # never issued by us: a forged or leaked-key link
            return "invalid"
        return None

    def path(self, image_id: str, exp: int) -> str:
        return f"/images/{quote(image_id, safe='')}?exp={int(exp)}&sig={self.sign(image_id, exp)}"

    def url(self, image_id: str) -> str:
        """A fresh link valid for ``ttl`` seconds."""
        return self.base_url.rstrip("/") + self.path(image_id, int(self.clock()) + self.ttl)
