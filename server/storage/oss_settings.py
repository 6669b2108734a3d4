"""The OSS block of the settings (EASEL_STORAGE=oss), read once from the environment and
validated once, when the OSS store is built (``server/storage/oss.py``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from providers.errors import ConfigError
from server.envvars import number, text

__all__ = ["OssSettings"]

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_BASE_PATH = re.compile(r"^[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass(frozen=True)
class OssSettings:
    """The OSS block of the settings, read once from the environment. Numbers are checked when read;
    the rest (required variables, bucket, endpoint, domain, region, base path) by ``checked`` when
    EASEL_STORAGE=oss is used, so stray OSS variables never stop a local-disk server."""

    access_key_id: str | None = None                                # OSS_ACCESS_KEY_ID
    access_key_secret: str | None = field(default=None, repr=False)  # OSS_ACCESS_KEY_SECRET
    endpoint: str | None = None                                     # OSS_ENDPOINT
    bucket: str | None = None                                       # OSS_BUCKET
    base_path: str = "easel-mcp"      # OSS_BASE_PATH (set it empty for the bucket root)
    custom_domain: str | None = None  # OSS_CUSTOM_DOMAIN: public links instead of signed ones
    region: str | None = None         # OSS_REGION: signature V4 when set, V1 otherwise
    url_expiry: int = 86400           # EASEL_OSS_URL_EXPIRY: signed GET URL lifetime, seconds
    timeout: float = 10.0             # EASEL_OSS_TIMEOUT: one OSS request, seconds
    retries: int = 3                  # EASEL_OSS_RETRIES: on 5xx, network errors, timeouts
    backoff: float = 0.5              # EASEL_OSS_BACKOFF: first retry delay (doubles)
    retry_interval: float = 30.0      # EASEL_OSS_RETRY_INTERVAL: late uploads of local copies

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OssSettings:
        d = cls()
        base = env.get("OSS_BASE_PATH")
        return cls(
            access_key_id=text(env, "OSS_ACCESS_KEY_ID"),
            access_key_secret=env.get("OSS_ACCESS_KEY_SECRET") or None,
            endpoint=text(env, "OSS_ENDPOINT"),
            bucket=text(env, "OSS_BUCKET"),
            base_path=d.base_path if base is None else base.strip().strip("/"),
            custom_domain=text(env, "OSS_CUSTOM_DOMAIN"),
            region=text(env, "OSS_REGION"),
            url_expiry=int(number(env, "EASEL_OSS_URL_EXPIRY", d.url_expiry, 1, 7 * 86400)),
            timeout=number(env, "EASEL_OSS_TIMEOUT", d.timeout, 0.05, 600),
            retries=int(number(env, "EASEL_OSS_RETRIES", d.retries, 0, 10)),
            backoff=number(env, "EASEL_OSS_BACKOFF", d.backoff, 0, 60),
            retry_interval=number(env, "EASEL_OSS_RETRY_INTERVAL", d.retry_interval, 0.01, 86400),
        )

    def checked(self) -> OssSettings:
        """These settings validated and normalised (endpoint and custom domain with a scheme, base
        path without slashes); ConfigError names every missing or invalid variable. Nothing here
        contacts OSS."""
        missing = [var for value, var in ((self.access_key_id, "OSS_ACCESS_KEY_ID"),
                                          (self.access_key_secret, "OSS_ACCESS_KEY_SECRET"),
                                          (self.endpoint, "OSS_ENDPOINT"), (self.bucket, "OSS_BUCKET"))
                   if not value]
        problems = []
        if missing:
            problems.append(f"EASEL_STORAGE=oss needs {', '.join(missing)} (not set)")
        bucket = self.bucket
        if bucket and not _BUCKET_NAME.match(bucket):
            problems.append(f"OSS_BUCKET {bucket[:80]!r} is not a valid bucket name "
                            "(3-63 characters: lower-case letters, digits and '-', not starting or ending with '-')")
        endpoint = _as_url(self.endpoint) if self.endpoint else None
        if self.endpoint and endpoint is None:
            problems.append(f"OSS_ENDPOINT {self.endpoint[:120]!r} is not a URL or host name "
                            "(e.g. https://oss-cn-hangzhou.aliyuncs.com)")
        domain = _as_url(self.custom_domain, allow_path=True) if self.custom_domain else None
        if self.custom_domain and domain is None:
            problems.append(f"OSS_CUSTOM_DOMAIN {self.custom_domain[:120]!r} is not a host name or "
                            "URL (e.g. https://img.example.com)")
        region = self.region
        if region and not _REGION.match(region):
            problems.append(f"OSS_REGION {region[:80]!r} is not a region id (e.g. cn-hangzhou)")
        base = (self.base_path or "").strip("/")
        if base and (not _BASE_PATH.match(base) or any(part in (".", "..") for part in base.split("/"))):
            problems.append(f"OSS_BASE_PATH {base[:120]!r} may only hold letters, digits, '.', '_', '-' "
                            "and '/' between segments")
        if problems:
            raise ConfigError("; ".join(problems) + ".")
        return replace(self, endpoint=endpoint, custom_domain=domain, base_path=base)


def _as_url(raw: str, *, allow_path: bool = False) -> str | None:
    """``host[:port]`` or ``http(s)://host[:port]`` (plus a path if allowed), with a scheme; None if invalid."""
    text = raw.strip()
    if any(c.isspace() for c in text):
        return None
    if "://" not in text:
        text = "https://" + text       # oss2 would assume http; real OSS endpoints speak https
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or not _HOST.match(parts.netloc):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    path = parts.path.rstrip("/")
    if path and not allow_path:
        return None
    return f"{parts.scheme}://{parts.netloc}{path}"
