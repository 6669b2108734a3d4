"""The gallery: a web page of every stored image, served by the server itself.

Routes (mounted on the HTTP transports by server.http, and served alone by
``easel-mcp gallery``, server.cli, for desktop users on stdio):

* ``GET /gallery``                     the page (server.gallery_page: plain HTML, CSS, a little JS)
* ``GET /gallery/api/images``          a page of the catalog as JSON (q, model, provider, tool, since,
                                        until, size, cursor, limit)
* ``GET /gallery/thumbs/{id}``         the cached thumbnail (server.thumbnails)
* ``GET /gallery/images/{id}``         the full image (``?download=1``: as an attachment)
* ``DELETE /gallery/api/images/{id}``  deletes the image, its record, thumbnail and catalog row
* ``POST /gallery/login``              exchanges the bearer token (a form field) for a session

Authorization, checked on every route: a signed gallery link
(``/gallery?exp=…&sig=…``, HMAC as image links are, ``EASEL_GALLERY_LINK_TTL``
seconds), which the ``gallery_link`` tool returns and the start-up banner shows on a
terminal; opening it sets a session cookie carrying the same signature
(HttpOnly, SameSite=Strict, path /gallery) and redirects to the bare /gallery, so
the link does not linger in the address bar. Or ``Authorization: Bearer <token>``
(scripts), or that token pasted into the page's form. A page from another site can
neither send the cookie (SameSite=Strict) nor the custom header a delete needs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from server.catalog import Filters
from server.gallery_page import CSP, login_html, page_html
from server.links import LinkSigner
from server.storage import ImageNotFound, StorageError, parse_image_id
from server.thumbnails import thumbnail

__all__ = ["Gallery", "gallery_secret"]

log = logging.getLogger("easel.gallery")

COOKIE = "easel_gallery"
_SUBJECT = "gallery"            # what a gallery signature covers (never a valid image id)
_LABEL = b"easel-mcp gallery links v1"
PAGE_LIMIT = 60
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}



def gallery_secret(link_key: bytes) -> bytes:
    """The gallery's own key, derived from the image-link key: one secret to configure, two uses."""
    return hmac.new(link_key, _LABEL, hashlib.sha256).digest()


class Gallery:
    def __init__(self, storage: Any, *, secret: bytes, base_url: str, ttl: int, token: str | None = None,
                 clock: Callable[[], float] = time.time, title: str = "easel gallery") -> None:
        self.storage = storage
        self.signer = LinkSigner(secret, base_url.rstrip("/"), ttl, clock)
        self.token = token
        self.clock = clock
        self.title = title

    # links and sessions ----------------------------------------------------------------

    def link(self) -> str:
        """A fresh signed link to the gallery, valid for the gallery link lifetime."""
        exp = int(self.clock()) + self.signer.ttl
        return f"{self.signer.base_url}/gallery?exp={exp}&sig={self.signer.sign(_SUBJECT, exp)}"

    def _session(self, exp: int) -> str:
        return f"{exp}.{self.signer.sign(_SUBJECT, exp)}"

    def _check_session(self, value: str | None) -> str | None:
        exp, _, sig = (value or "").partition(".")
        return self.signer.verify(_SUBJECT, exp, sig)

    def _with_session(self, response: Response, exp: int, request: Request) -> Response:
        response.set_cookie(COOKIE, self._session(exp), max_age=max(0, exp - int(self.clock())), path="/gallery",
                            httponly=True, samesite="strict",
                            # behind a TLS proxy we see plain HTTP; the public URL says what the browser uses
                            secure=request.url.scheme == "https" or self.signer.base_url.startswith("https://"))
        return response

    def _bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return bool(self.token) and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode())  # type: ignore[union-attr]

    def _denied(self, request: Request) -> Response | None:
        """None when the request may proceed; otherwise the refusal."""
        if self._bearer_ok(request):
            return None
        problem = self._check_session(request.cookies.get(COOKIE))
        if problem is None:
            return None
        text = ("Your gallery session has expired: ask the assistant for a new gallery link (gallery_link)."
                if problem == "expired" else "Not authorized: open the gallery through a signed gallery link.")
        return JSONResponse({"error": text}, status_code=401, headers=_HEADERS)

    # routes ---------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, list[str], Callable[[Request], Any]]]:
        return [("/gallery", ["GET"], self.page),
                ("/gallery/login", ["POST"], self.login),
                ("/gallery/api/images", ["GET"], self.api_list),
                ("/gallery/api/images/{image_id}", ["DELETE"], self.api_delete),
                ("/gallery/thumbs/{image_id}", ["GET"], self.thumb),
                ("/gallery/images/{image_id}", ["GET"], self.full)]

    async def page(self, request: Request) -> Response:
        exp, sig = request.query_params.get("exp"), request.query_params.get("sig")
        if exp is not None or sig is not None:
            problem = self.signer.verify(_SUBJECT, exp, sig)
            if problem is not None:
                why = "has expired" if problem == "expired" else "is not valid"
                return self._html(login_html(self.title, f"This gallery link {why}. Ask the assistant for a new "
                                             "one (the gallery_link tool).", token_form=bool(self.token)),
                                  status=403)
            return self._with_session(RedirectResponse("/gallery", status_code=303), int(exp or 0), request)
        if self._denied(request) is not None:
            return self._html(login_html(self.title, "Open the gallery through a signed link (ask the assistant "
                                         "for one: the gallery_link tool).", token_form=bool(self.token)),
                              status=401)
        return self._html(page_html(self.title), status=200)

    def _html(self, html: str, *, status: int) -> Response:
        return HTMLResponse(html, status_code=status, headers={**_HEADERS, "Content-Security-Policy": CSP})

    async def login(self, request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        if not self.token or not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._html(login_html(self.title, "That is not the server's token.",
                                         token_form=bool(self.token)), status=401)
        exp = int(self.clock()) + self.signer.ttl
        return self._with_session(RedirectResponse("/gallery", status_code=303), exp, request)

    async def api_list(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit") or PAGE_LIMIT), 200))
        except ValueError:
            return JSONResponse({"error": "limit: a whole number from 1 to 200."}, status_code=400)
        filters = Filters(query=q.get("q") or None, model=q.get("model") or None, provider=q.get("provider") or None,
                          tool=q.get("tool") or None, since=q.get("since") or None, until=q.get("until") or None,
                          size=q.get("size") or None)
        search = getattr(self.storage, "search", None)
        if search is None:
            return JSONResponse({"error": "The gallery needs the catalog (EASEL_CATALOG is off)."}, status_code=503)
        try:
            page = await search(filters, limit, q.get("cursor") or None, with_total=True)
            facets = await _facets(self.storage) if not q.get("cursor") else None   # the menus need them once
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=_HEADERS)
        except StorageError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400 if "cursor" in str(exc) else 503,
                                headers=_HEADERS)
        images = [_card(row, record) for row, record in zip(page.rows, page.records, strict=True)]
        return JSONResponse({"images": images, "next_cursor": page.next_cursor, "total": page.total,
                             "facets": facets}, headers=_HEADERS)

    async def api_delete(self, request: Request) -> Response:
        if denied := self._denied(request):
            return denied
        if request.headers.get("x-easel-gallery") != "delete":     # a form or image tag elsewhere cannot set it
            return JSONResponse({"error": "Deleting needs the X-Easel-Gallery: delete header."}, status_code=400)
        image_id = request.path_params["image_id"]
        try:
            parse_image_id(image_id)
            await self.storage.delete(image_id)
        except ImageNotFound:
            return JSONResponse({"error": "No such image."}, status_code=404, headers=_HEADERS)
        except StorageError as exc:
            log.warning("gallery: deleting %s failed: %s", image_id, exc)
            return JSONResponse({"error": f"Could not delete: {exc}"}, status_code=503, headers=_HEADERS)
        log.info("gallery: deleted %s", image_id)
        return JSONResponse({"deleted": f"easel://images/{image_id}"}, headers=_HEADERS)

    async def thumb(self, request: Request) -> Response:
        return await self._image(request, thumbnail_only=True)

    async def full(self, request: Request) -> Response:
        return await self._image(request, thumbnail_only=False)

    async def _image(self, request: Request, *, thumbnail_only: bool) -> Response:
        if denied := self._denied(request):
            return denied
        image_id = request.path_params["image_id"]
        try:
            parse_image_id(image_id)
            if thumbnail_only:
                data, mime = await thumbnail(self.storage, image_id), "image/jpeg"
            else:
                data, mime = await self.storage.get(image_id)
        except ImageNotFound:
            return PlainTextResponse("No such image.", status_code=404)
        except StorageError as exc:
            log.warning("gallery: reading %s failed: %s", image_id, exc)
            return PlainTextResponse("Image storage is unavailable; try again later.", status_code=503)
        except Exception as exc:  # undecodable bytes: no thumbnail, the page shows a placeholder
            log.warning("gallery: no thumbnail for %s (%s)", image_id, type(exc).__name__)
            return PlainTextResponse("No thumbnail.", status_code=404)
        headers = {"Cache-Control": "private, max-age=86400, immutable", "X-Content-Type-Options": "nosniff",
                   "Content-Security-Policy": "default-src 'none'", "Referrer-Policy": "no-referrer"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f"attachment; filename=\"{quote(image_id)}\""
        return Response(data, media_type=mime, headers=headers)


async def _facets(storage: Any) -> dict[str, list[str]]:
    import anyio

    catalog = getattr(storage, "catalog", None)
    return await anyio.to_thread.run_sync(catalog.facets_sync) if catalog is not None else {}


def _card(row: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """What the page shows for one image (no storage URLs: the page reads through its own routes)."""
    image_id = row["id"]
    user_prompt = row.get("user_prompt")
    return {
        "id": image_id, "uri": f"easel://images/{image_id}", "prompt": row.get("prompt") or "",
        "user_prompt": user_prompt if user_prompt and user_prompt != row.get("prompt") else None,
        "model": row.get("model"), "provider": row.get("provider"), "tool": row.get("tool"),
        "width": row.get("width"), "height": row.get("height"), "seed": row.get("seed"),
        "cost_usd": row.get("cost"), "created": row.get("created"), "bytes": row.get("bytes"),
        "style": record.get("style") if isinstance(record.get("style"), str) else None,
        "thumb": f"/gallery/thumbs/{quote(image_id)}", "full": f"/gallery/images/{quote(image_id)}",
    }


# ---------------------------------------------------------------------------- wiring


def make_gallery(storage: Any, settings: Any, base_url: str) -> Gallery:
    from server.links import link_secret

    return Gallery(storage, secret=gallery_secret(link_secret(settings.http)), base_url=base_url,
                   ttl=settings.gallery.link_ttl, token=settings.http.auth_token)


def gallery_for(server: Any, settings: Any, base_url: str) -> Gallery:
    """The server's gallery, made once (the banner and the HTTP app must share its key)."""
    if getattr(server, "gallery", None) is None:
        server.gallery = make_gallery(server.storage, settings, base_url)
    return server.gallery


def mount(server: Any, settings: Any, base_url: str) -> Gallery:
    """Add the gallery routes to an MCPServer (HTTP transports) and let the gallery_link tool use them."""
    gallery = gallery_for(server, settings, base_url)
    for path, methods, handler in gallery.routes():
        server.custom_route(path, methods=methods)(handler)
    server.gallery_link = gallery.link
    return gallery


def standalone_app(gallery: Gallery, storage: Any) -> Any:
    """A Starlette app serving only the gallery (``easel-mcp gallery``), catalog sync included."""
    from contextlib import asynccontextmanager

    import anyio
    from starlette.applications import Starlette
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(_: Any):  # type: ignore[no-untyped-def]
        async with anyio.create_task_group() as tg:
            background = getattr(storage, "run_background", None)
            if background is not None:
                tg.start_soon(background)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def home(_: Request) -> Response:
        return RedirectResponse("/gallery")

    routes = [Route(path, handler, methods=methods) for path, methods, handler in gallery.routes()]
    return Starlette(routes=[*routes, Route("/", home, methods=["GET"])], lifespan=lifespan)

