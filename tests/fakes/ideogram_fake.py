"""Loopback fake of the Ideogram 3.0 API (direct, synchronous).

Wire behaviour follows the "Test-server specification for Ideogram" in
/work/shared/reference/oss-modelscope-dashscope-ideogram.md §4:

* ``POST /v1/ideogram-v3/generate`` (and ``/edit``, ``/remix``) — ``Api-Key: <key>``
  header (else 401), **multipart/form-data** only. Validates the enums
  (``aspect_ratio``, ``rendering_speed``, ``magic_prompt``, ``style_type``),
  ``aspect_ratio`` together with ``resolution`` (400), ``num_images`` 1..8, ``seed``
  0..2147483647, ``color_palette`` as a JSON string with exactly one of ``name`` /
  ``members``. A prompt containing "unsafe" → 422 ``{"error":"Prompt failed the
  safety check."}``. More than ``max_concurrent`` requests in flight → 429.
  Reply ``{"created", "data":[{"url","prompt","resolution","is_image_safe","seed",
  "style_type"}]}`` with one entry per requested image.
* ``GET /eph/{name}?exp=…&sig=…`` — the image, only with a valid signature before
  ``exp`` (else 403).

The API is synchronous: ``latency`` (seconds, slept on the server) and ``hold``/
``release()`` stand in for the async vendors' ``steps_before_done``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes._images import image_size
from tests.fakes.modelscope_fake import VendorFake, is_number, new_id

__all__ = [
    "ASPECT_RATIOS",
    "ASPECT_RESOLUTIONS",
    "IDEOGRAM_401_BODY",
    "IDEOGRAM_429_BODY",
    "IDEOGRAM_500_BODY",
    "IDEOGRAM_SAFETY_BODY",
    "IdeogramFake",
]

# [U] bodies for 400/401/429/5xx are not specified by Ideogram; FastAPI-style "detail".
IDEOGRAM_401_BODY: dict[str, Any] = {"detail": "Unauthorized"}
IDEOGRAM_429_BODY: dict[str, Any] = {"detail": "Too many requests"}
IDEOGRAM_500_BODY: dict[str, Any] = {"detail": "Internal Server Error"}
# Documented: 422, schema GenerateImageSafetyError.
IDEOGRAM_SAFETY_BODY: dict[str, Any] = {"error": "Prompt failed the safety check."}

# Default output resolution for each aspect ratio (1x1 → 1024x1024; others [U]).
ASPECT_RESOLUTIONS: dict[str, str] = {
    "1x3": "512x1536", "3x1": "1536x512", "1x2": "704x1408", "2x1": "1408x704",
    "9x16": "736x1312", "16x9": "1312x736", "10x16": "800x1280", "16x10": "1280x800",
    "2x3": "832x1248", "3x2": "1248x832", "3x4": "864x1152", "4x3": "1152x864",
    "4x5": "896x1120", "5x4": "1120x896", "1x1": "1024x1024",
}
ASPECT_RATIOS = frozenset(ASPECT_RESOLUTIONS)
RENDERING_SPEEDS = frozenset({"FLASH", "TURBO", "DEFAULT", "QUALITY"})
MAGIC_PROMPTS = frozenset({"AUTO", "ON", "OFF"})
STYLE_TYPES = frozenset({"AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION"})
PALETTE_NAMES = frozenset({"EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL",
                           "ULTRAMARINE"})
_RESOLUTION = re.compile(r"^(\d+)x(\d+)$")
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
_STYLE_CODE = re.compile(r"^[0-9A-Fa-f]{8}$")


class _Invalid(Exception):
    pass


def _int_field(fields: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    if name not in fields:
        return None
    try:
        value = int(fields[name])
    except (TypeError, ValueError):
        raise _Invalid(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise _Invalid(f"{name} must be between {lo} and {hi}")
    return value


def _enum_field(fields: dict[str, Any], name: str, allowed: frozenset[str]) -> str | None:
    if name not in fields:
        return None
    if fields[name] not in allowed:
        raise _Invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
    return fields[name]


def check_palette(raw: Any) -> dict[str, Any]:
    """Parse and validate a ``color_palette`` form value (a JSON string)."""
    try:
        palette = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        palette = None
    if not isinstance(palette, dict):
        raise _Invalid("color_palette must be a JSON object")
    if ("name" in palette) == ("members" in palette) or set(palette) - {"name", "members"}:
        raise _Invalid("color_palette needs exactly one of name or members")
    if "name" in palette:
        if palette["name"] not in PALETTE_NAMES:
            raise _Invalid(f"color_palette.name must be one of {', '.join(sorted(PALETTE_NAMES))}")
        return palette
    members = palette["members"]
    if not isinstance(members, list) or not members:
        raise _Invalid("color_palette.members must be a non-empty list")
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("color_hex"), str) \
                or not _HEX.match(member["color_hex"]):
            raise _Invalid("color_palette.members[].color_hex must look like #RRGGBB")
        weight = member.get("color_weight", 1.0)
        if not is_number(weight) or not 0.05 <= weight <= 1.0:
            raise _Invalid("color_palette.members[].color_weight must be in [0.05, 1.0]")
    return palette


class IdeogramFake(VendorFake):
    """Ideogram v3: synchronous multipart generate/edit/remix with signed image URLs."""

    vendor = "ideogram"

    def _reset_state(self) -> None:
        super()._reset_state()
        self.max_concurrent = 10
        self.url_ttl = 3600.0          # seconds until an image URL's exp
        self.clock: Callable[[], float] = time.time
        self.rejected_concurrency = 0  # requests answered 429 by the in-flight limit
        self._secret = os.urandom(16)
        self._unsafe = 0

    def unsafe_images(self, n: int = 1) -> None:
        """The next ``n`` images come back ``is_image_safe: false`` with ``url: null``."""
        with self.cond:
            self._unsafe += n
            self.cond.notify_all()

    # -- vendor shapes -----------------------------------------------------------
    def error_body(self, status: int) -> tuple[Any, dict[str, str]]:
        if status == 401:
            return dict(IDEOGRAM_401_BODY), {}
        if status == 422:
            return dict(IDEOGRAM_SAFETY_BODY), {}
        if status == 429:
            return dict(IDEOGRAM_429_BODY), {}
        if status >= 500:
            return dict(IDEOGRAM_500_BODY), {}
        return {"detail": f"HTTP {status}"}, {}

    def build_routes(self) -> list[Route]:
        return [
            Route("/v1/ideogram-v3/generate", self._generate, methods=["POST"]),
            Route("/v1/ideogram-v3/edit", self._edit, methods=["POST"]),
            Route("/v1/ideogram-v3/remix", self._remix, methods=["POST"]),
            Route("/eph/{name}", self._image, methods=["GET"]),
        ]

    def sign(self, name: str, exp: int) -> str:
        return hmac.new(self._secret, f"{name}:{exp}".encode(), hashlib.sha256).hexdigest()

    # -- request handling ----------------------------------------------------------
    async def _generate(self, request: Request) -> Response:
        return await self._handle(request, "generate")

    async def _edit(self, request: Request) -> Response:
        return await self._handle(request, "edit")

    async def _remix(self, request: Request) -> Response:
        return await self._handle(request, "remix")

    async def _handle(self, request: Request, kind: str) -> Response:
        if request.headers.get("api-key") != self.api_key:
            return JSONResponse(IDEOGRAM_401_BODY, status_code=401)
        with self.cond:
            if self.in_flight >= self.max_concurrent:
                self.rejected_concurrency += 1
                self.cond.notify_all()
                return JSONResponse(IDEOGRAM_429_BODY, status_code=429)
            generation = self._open_slot()
        try:
            return await self._generate_images(request, kind)
        finally:
            self._close_slot(generation)

    async def _generate_images(self, request: Request, kind: str) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return JSONResponse({"detail": "Content-Type must be multipart/form-data"},
                                status_code=400)
        form = await request.form()
        try:
            fields: dict[str, Any] = {}
            files: dict[str, list[bytes]] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.setdefault(key, []).append(await value.read())
                elif key in fields:
                    prev = fields[key]
                    fields[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
                else:
                    fields[key] = value
        finally:
            await form.close()
        try:
            spec = self._validate(fields, files, kind)
        except _Invalid as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if "unsafe" in spec["prompt"].lower():
            return JSONResponse(IDEOGRAM_SAFETY_BODY, status_code=422)
        await self._sync_wait()
        failure = self._take_failure()
        if failure is not None:
            return JSONResponse({"detail": failure["message"]}, status_code=400)
        width, height = (int(s) for s in spec["resolution"].split("x"))
        task: dict[str, Any] = {
            "id": new_id(), "vendor": self.vendor, "kind": kind, "state": "SUCCEEDED",
            "polls": 0, "failure": None, "image_names": [], "expired": False,
            "n": spec["num_images"], "width": width, "height": height, "created": time.time(),
            "prompt": spec["prompt"], "seed": spec["seed"], "resolution": spec["resolution"],
            "params": fields,
        }
        with self.cond:
            self.tasks[task["id"]] = task
            names = self._render(task)
            exp = int(self.clock() + self.url_ttl)
            data = []
            for name in names:
                safe = self._unsafe <= 0
                if not safe:
                    self._unsafe -= 1
                url = f"{self.url}/eph/{name}?exp={exp}&sig={self.sign(name, exp)}"
                seed = spec["seed"] if spec["seed"] is not None else random.randrange(2**31)
                data.append({"url": url if safe else None, "prompt": spec["final_prompt"],
                             "resolution": spec["resolution"], "is_image_safe": safe,
                             "seed": seed, "style_type": spec["style_type"]})
                task.setdefault("seeds", []).append(seed)
            self.cond.notify_all()
        created = dt.datetime.now(dt.UTC).isoformat()
        return JSONResponse({"created": created, "data": data})

    def _validate(self, fields: dict[str, Any], files: dict[str, list[bytes]],
                  kind: str) -> dict[str, Any]:
        for key, value in fields.items():
            if isinstance(value, list) and key not in ("style_codes", "style_codes[]"):
                raise _Invalid(f"{key} was given more than once")
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _Invalid("prompt is required")
        aspect = _enum_field(fields, "aspect_ratio", ASPECT_RATIOS)
        resolution = fields.get("resolution")
        if aspect is not None and resolution is not None:
            raise _Invalid("aspect_ratio and resolution cannot be used together")
        if resolution is not None:
            m = _RESOLUTION.match(resolution)
            if m is None or not all(512 <= int(side) <= 1536 for side in m.groups()):
                raise _Invalid(f"resolution {resolution!r} is not supported")
        _enum_field(fields, "rendering_speed", RENDERING_SPEEDS)
        magic = _enum_field(fields, "magic_prompt", MAGIC_PROMPTS)
        style_type = _enum_field(fields, "style_type", STYLE_TYPES)
        num_images = _int_field(fields, "num_images", 1, 8) or 1
        seed = _int_field(fields, "seed", 0, 2147483647)
        if "color_palette" in fields:
            check_palette(fields["color_palette"])
        codes = fields.get("style_codes", fields.get("style_codes[]"))
        if codes is not None:
            codes = codes if isinstance(codes, list) else [codes]
            if not all(_STYLE_CODE.match(c) for c in codes):
                raise _Invalid("style_codes must be 8 hexadecimal characters each")
            if style_type is not None:
                raise _Invalid("style_codes cannot be combined with style_type")
            if "style_reference_images" in files or "style_reference_images[]" in files:
                raise _Invalid("style_codes cannot be combined with style_reference_images")
        negative = fields.get("negative_prompt")
        if negative is not None and not isinstance(negative, str):
            raise _Invalid("negative_prompt must be text")
        if kind in ("edit", "remix"):
            if "image" not in files:
                raise _Invalid("image is required")
            try:
                src_w, src_h = image_size(files["image"][0])
            except Exception:
                raise _Invalid("image is not a readable image") from None
            if kind == "edit":
                if "mask" not in files:
                    raise _Invalid("mask is required")
                try:
                    mask_size = image_size(files["mask"][0])
                except Exception:
                    raise _Invalid("mask is not a readable image") from None
                if mask_size != (src_w, src_h):
                    raise _Invalid("mask must be the same size as image")
                resolution = f"{src_w}x{src_h}"
            else:
                _int_field(fields, "image_weight", 1, 100)
        if resolution is None:
            resolution = ASPECT_RESOLUTIONS[aspect or "1x1"]
        final_prompt = prompt
        if magic == "ON":
            final_prompt = f"{prompt}, rendered with rich detail and cinematic lighting"
        return {"prompt": prompt, "final_prompt": final_prompt, "resolution": resolution,
                "num_images": num_images, "seed": seed,
                "style_type": style_type or "GENERAL"}

    async def _image(self, request: Request) -> Response:
        name = request.path_params["name"]
        exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
        try:
            exp_value = int(exp) if exp is not None else None
        except ValueError:
            exp_value = None
        if exp_value is None or not sig or not hmac.compare_digest(sig, self.sign(name, exp_value)):
            return Response(b"Forbidden: bad signature", status_code=403, media_type="text/plain")
        if exp_value < self.clock():
            return Response(b"Forbidden: URL expired", status_code=403, media_type="text/plain")
        return self._serve_image(name)
