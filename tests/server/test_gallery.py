"""The gallery over HTTP: signed links, sessions, the JSON API, thumbnails, delete; the
gallery_link tool; ``easel-mcp gallery``; and the page itself in a real headless Chromium."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from PIL import Image, ImageDraw

from server.config import Settings
from server.storage.local import LocalStorage
from tests.support.processes import EASEL, free_port, http_server, stop
from tests.support.results import text_of

pytestmark = pytest.mark.anyio

AUTH = "gallery-test-token-0123456789abcdef"

SCENES = [  # (user prompt, prompt as sent, model, sky top, sky bottom, ground, sun, size, created)
    ("a lighthouse on a cliff at dusk", "photorealistic of a lighthouse on a cliff at dusk", "Flux 1.1 Pro",
     (38, 44, 92), (236, 140, 98), (40, 46, 60), (255, 214, 150), (1024, 1024), "2026-11-30T18:10:00.000Z"),
    ("一座海边的灯塔，黄昏", "一座海边的灯塔，黄昏，油画风格", "Qwen Image", (250, 170, 120), (255, 226, 180),
     (52, 96, 130), (255, 250, 220), (1365, 1024), "2026-11-29T09:00:00.000Z"),
    ("a red fox in fresh snow", "a red fox in fresh snow", "Recraft v3", (170, 200, 230), (232, 240, 248),
     (245, 247, 250), (255, 255, 240), (1024, 1365), "2026-11-28T08:00:00.000Z"),
    ("a misty pine forest at dawn", "photorealistic of a misty pine forest at dawn", "Flux 1.1 Pro Ultra",
     (120, 150, 160), (200, 214, 210), (34, 70, 52), (240, 236, 210), (1024, 1024), "2026-11-27T06:00:00.000Z"),
    ("neon city street in the rain", "digital illustration of a neon city street in the rain", "Flux 1.1 Pro",
     (20, 12, 48), (120, 30, 110), (26, 24, 40), (80, 255, 230), (1440, 810), "2026-11-26T22:00:00.000Z"),
    ("a bowl of ramen, studio light", "studio portrait of a bowl of ramen", "Stable Diffusion 3.5 Medium",
     (60, 30, 20), (150, 80, 40), (90, 50, 30), (255, 200, 120), (1024, 1024), "2026-11-25T12:00:00.000Z"),
    ("desert dunes under a full moon", "desert dunes under a full moon", "Recraft v3",
     (10, 16, 40), (50, 60, 110), (190, 140, 90), (250, 250, 235), (1365, 1024), "2026-11-24T23:00:00.000Z"),
    ("watercolor koi pond", "watercolor koi pond", "Nano Banana Pro",
     (90, 160, 170), (170, 220, 210), (40, 110, 120), (255, 140, 60), (1024, 1024), "2026-11-23T15:00:00.000Z"),
]


def scene(top: tuple[int, ...], bottom: tuple[int, ...], ground: tuple[int, ...], sun: tuple[int, ...],
          size: tuple[int, int], seed: int) -> bytes:
    """A small landscape: sky gradient, a sun, hills; different for every scene."""
    w, h = size[0] // 4, size[1] // 4
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / max(1, h - 1)
        draw.line([(0, y), (w, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    r = min(w, h) // 9
    cx, cy = w * (0.25 + 0.09 * seed % 0.5), h * 0.38
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=sun)
    for k, shade in enumerate((0.75, 1.0)):
        color = tuple(int(c * shade) for c in ground)
        base = h * (0.62 + 0.12 * k)
        points = [(0, h)] + [(x, base - (h * 0.08) * abs(((x + seed * 37 + k * 53) % 160) - 80) / 80)
                             for x in range(0, w + 8, 8)] + [(w, h)]
        draw.polygon(points, fill=color)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def fill(settings_dir: Path) -> list[str]:
    store = LocalStorage(settings_dir)
    store.check_writable()
    ids = []
    for i, (user, sent, model, top, bottom, ground, sun, size, created) in enumerate(SCENES):
        data = scene(top, bottom, ground, sun, size, i)
        ids.append(store.put_sync(data, "image/png", {
            "prompt": sent, "user_prompt": user, "model": model, "provider": "replicate", "tool": "generate_image",
            "width": size[0], "height": size[1], "seed": 4000 + i, "created": created}).image_id)
    return ids


@pytest.fixture
def stored(settings: Settings) -> list[str]:
    return fill(settings.storage.dir)


async def gallery_link_of(base: str, token: str | None = None) -> str:
    from mcp.client.streamable_http import streamable_http_client

    from tests.support.processes import http_client

    async with http_client(token) as http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
        result = await client.call_tool("gallery_link", {})
    assert not result.is_error, text_of(result)
    match = re.search(r"(http://\S+/gallery\?exp=\d+&sig=[0-9a-f]{64})", text_of(result))
    assert match, text_of(result)
    return match[1]


# ----------------------------------------------------------------------------- HTTP


async def test_signed_link_opens_a_session_and_the_api_serves_the_catalog(
        env: dict[str, str], settings: Settings, stored: list[str]) -> None:
    with http_server(["--transport", "http"], env) as base:
        link = await gallery_link_of(base)
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/gallery")).status_code == 401                 # no link, no session
            assert (await http.get("/gallery/api/images")).status_code == 401
            assert (await http.get(f"/gallery/thumbs/{stored[0]}")).status_code == 401
            bad = link[:-1] + ("0" if link[-1] != "0" else "1")
            refused = await http.get(bad.removeprefix(base))
            assert refused.status_code == 403 and "not valid" in refused.text and "easel_gallery" not in str(
                refused.headers)
            opened = await http.get(link.removeprefix(base))
            assert opened.status_code == 303 and opened.headers["location"] == "/gallery"
            cookie = opened.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
            page = await http.get("/gallery")
            assert page.status_code == 200 and "<script>" in page.text and "cdn" not in page.text.lower()
            csp = page.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src 'sha256-" in csp

            listed = (await http.get("/gallery/api/images", params={"limit": 3})).json()
            assert [i["id"] for i in listed["images"]] == stored[:3] and listed["total"] == len(SCENES)
            more = (await http.get("/gallery/api/images", params={"limit": 3, "cursor": listed["next_cursor"]})).json()
            assert [i["id"] for i in more["images"]] == stored[3:6]
            assert "Flux 1.1 Pro" in listed["facets"]["model"]
            found = (await http.get("/gallery/api/images", params={"q": "灯塔"})).json()
            assert [i["id"] for i in found["images"]] == [stored[1]]
            assert (await http.get("/gallery/api/images", params={"size": "huge"})).status_code == 400

            thumb = await http.get(f"/gallery/thumbs/{stored[0]}")
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
            with Image.open(io.BytesIO(thumb.content)) as im:
                assert max(im.size) <= 384
            cached = LocalStorage(settings.storage.dir).sidecar_path(stored[0], ".thumb.jpg")
            assert cached.read_bytes() == thumb.content                      # made once, kept beside the image
            full = await http.get(f"/gallery/images/{stored[0]}", params={"download": "1"})
            assert full.content.startswith(b"\x89PNG") and "attachment" in full.headers["content-disposition"]
            assert (await http.get("/gallery/images/..%2F..%2Fetc%2Fpasswd")).status_code == 404


async def test_delete_needs_the_header_and_removes_it_everywhere(
        env: dict[str, str], settings: Settings, stored: list[str]) -> None:
    with http_server(["--transport", "http"], env) as base:
        link = await gallery_link_of(base)
        async with httpx.AsyncClient(base_url=base) as http:
            await http.get(link.removeprefix(base))
            await http.get(f"/gallery/thumbs/{stored[2]}")
            assert (await http.delete(f"/gallery/api/images/{stored[2]}")).status_code == 400   # no header
            gone = await http.delete(f"/gallery/api/images/{stored[2]}", headers={"X-Easel-Gallery": "delete"})
            assert gone.status_code == 200 and gone.json() == {"deleted": f"easel://images/{stored[2]}"}
            again = await http.delete(f"/gallery/api/images/{stored[2]}", headers={"X-Easel-Gallery": "delete"})
            assert again.status_code == 404
            ids = [i["id"] for i in (await http.get("/gallery/api/images")).json()["images"]]
            assert stored[2] not in ids and len(ids) == len(SCENES) - 1
        async with Client(f"{base}/mcp") as client:
            listed = [str(r.uri) for r in (await client.list_resources()).resources]
            assert f"easel://images/{stored[2]}" not in listed
            missing = await client.call_tool("search_images", {"query": "fox"})
            assert missing.structured_content["images"] == []
    path = LocalStorage(settings.storage.dir).path_of(stored[2])
    assert not list(path.parent.glob(path.name + "*"))             # image, record and thumbnail


async def test_bearer_token_or_the_token_form_also_open_it(env: dict[str, str], stored: list[str]) -> None:
    env = {**env, "EASEL_AUTH_TOKEN": AUTH}
    with http_server(["--transport", "http"], env) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            api = await http.get("/gallery/api/images", headers={"Authorization": f"Bearer {AUTH}"})
            assert api.status_code == 200 and len(api.json()["images"]) == len(SCENES)
            assert (await http.get("/gallery/api/images", headers={"Authorization": "Bearer wrong"})).status_code == 401
            form = await http.get("/gallery")
            assert form.status_code == 401 and 'name="token"' in form.text
            assert (await http.post("/gallery/login", data={"token": "nope"})).status_code == 401
            login = await http.post("/gallery/login", data={"token": AUTH})
            assert login.status_code == 303 and "easel_gallery=" in login.headers["set-cookie"]
            assert AUTH not in login.headers["set-cookie"]
            assert (await http.get("/gallery")).status_code == 200
        link = await gallery_link_of(base, AUTH)
        assert AUTH not in link


async def test_gallery_link_on_stdio_points_to_the_gallery_command(settings: Settings) -> None:
    from server.app import build_server

    async with Client(build_server(settings)) as client:
        result = await client.call_tool("gallery_link", {})
    assert "easel-mcp gallery" in text_of(result) and "http" not in text_of(result)


def test_expired_links_and_sessions_are_refused(tmp_path: Path) -> None:
    from server.gallery import Gallery

    now = [1_000_000.0]
    gallery = Gallery(object(), secret=b"k" * 32, base_url="http://127.0.0.1:1", ttl=60, clock=lambda: now[0])
    exp, sig = re.search(r"exp=(\d+)&sig=(\w+)", gallery.link()).groups()  # type: ignore[union-attr]
    assert gallery.signer.verify("gallery", exp, sig) is None
    assert gallery._check_session(f"{exp}.{sig}") is None
    now[0] += 61
    assert gallery._check_session(f"{exp}.{sig}") == "expired"
    assert gallery._check_session("garbage") == "invalid"
    other = Gallery(object(), secret=b"x" * 32, base_url="http://127.0.0.1:1", ttl=60, clock=lambda: now[0])
    assert other._check_session(f"{exp}.{sig}") == "invalid"


def test_behind_a_tls_proxy_the_session_cookie_is_secure() -> None:
    """EASEL_PUBLIC_URL=https://…: the proxy speaks plain HTTP to us, the browser HTTPS to it; the
    cookie must still be Secure, or the browser sends it over any plain-HTTP request to that host."""
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from server.gallery import Gallery

    for base, secure in (("https://img.example.com", True), ("http://127.0.0.1:8000", False)):
        gallery = Gallery(object(), secret=b"k" * 32, base_url=base, ttl=60)
        app = Starlette(routes=[Route(p, h, methods=m) for p, m, h in gallery.routes()])
        with TestClient(app, base_url="http://127.0.0.1:8000") as http:
            opened = http.get(gallery.link().removeprefix(base), follow_redirects=False)
        assert opened.status_code == 303
        assert ("; secure" in opened.headers["set-cookie"].lower()) is secure, opened.headers["set-cookie"]


# ----------------------------------------------------------------------------- easel-mcp gallery + a browser


@contextmanager
def gallery_process(env: dict[str, str]) -> Iterator[str]:
    """``easel-mcp gallery --port N`` and the link it prints."""
    port = free_port()
    proc = subprocess.Popen([*EASEL, "gallery", "--port", str(port)], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        for _ in range(5):                        # bounded: the banner is 3 lines
            line = proc.stdout.readline()
            if "open:" in line or not line:
                break
        match = re.search(r"open: (http://127\.0\.0\.1:\d+/gallery\?\S+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        with httpx.Client() as http:             # wait until it answers (bounded)
            for _ in range(200):
                try:
                    http.get(f"http://127.0.0.1:{port}/gallery")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None:
                        raise AssertionError(proc.stderr.read() if proc.stderr else "exited") from None
                    import time

                    time.sleep(0.05)
        yield match[1]
    finally:
        stop(proc)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_the_page_in_a_real_browser(env: dict[str, str], settings: Settings, browser: Any,
                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect  # its waits need no eval, which the page's CSP forbids

    ids = fill(settings.storage.dir)
    with gallery_process(env) as link:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(15_000)         # every wait below is bounded by this
        expect.set_options(timeout=15_000)
        page.goto(link)
        assert page.url.endswith("/gallery")      # the signed query left the address bar
        cards = page.locator(".card")
        expect(cards).to_have_count(len(SCENES))
        for i in range(len(SCENES)):              # every thumbnail loaded and decoded
            expect(cards.nth(i).locator("img")).to_have_js_property("complete", True)
            expect(cards.nth(i).locator("img")).not_to_have_js_property("naturalWidth", 0)
        expect(cards.first).to_have_attribute("data-id", ids[0])                  # newest first
        expect(page.locator("#count")).to_have_text(f"{len(SCENES)} images")
        page.screenshot(path=str(tmp_path / "gallery.png"))          # docs/gallery.png is one of these

        page.fill("#q", "lighthouse")                              # search narrows the grid
        expect(cards).to_have_count(1)
        expect(cards.first).to_have_attribute("data-id", ids[0])
        page.fill("#q", "灯塔")
        expect(cards.first).to_have_attribute("data-id", ids[1])
        expect(cards).to_have_count(1)
        page.fill("#q", "")
        page.select_option("#model", "Recraft v3")
        expect(cards).to_have_count(2)

        cards.first.click()                                        # an image opens, full size, with its facts
        full = page.locator("#full")
        expect(page.locator("#viewer")).to_be_visible()
        expect(full).to_have_js_property("complete", True)
        expect(full).to_have_js_property("naturalWidth", SCENES[2][7][0] // 4)
        facts = page.locator("#v-facts")
        for text in ("Recraft v3", "1024 × 1365", "4002", "2026-11-28 08:00", f"easel://images/{ids[2]}"):
            expect(facts).to_contain_text(text)
        expect(page.locator("#v-prompt")).to_have_text("a red fox in fresh snow")
        expect(page.locator("#v-download")).to_have_attribute("href", re.compile(r"\?download=1$"))
        page.screenshot(path=str(tmp_path / "gallery-viewer.png"))

        page.click("#v-delete")                                    # delete asks first, then removes it
        page.click("#v-delete-no")
        expect(cards).to_have_count(2)
        page.click("#v-delete")
        page.click("#v-delete-yes")
        expect(cards).to_have_count(1)
        assert not LocalStorage(settings.storage.dir).path_of(ids[2]).exists()

        bad = browser.new_page()                                   # a link with a bad signature is refused
        response = bad.goto(link[:-64] + "0" * 64)
        assert response.status == 403
        expect(bad.locator("body")).to_contain_text("not valid")
        expect(bad.locator(".card")).to_have_count(0)
    assert (tmp_path / "gallery.png").stat().st_size > 10_000


def test_the_banner_shows_a_gallery_link_only_on_a_terminal(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    import argparse

    from server import cli
    from server.app import build_server

    server = build_server(settings)
    args = argparse.Namespace(transport="http", host="127.0.0.1", port=8123)

    class Stream(io.StringIO):
        def __init__(self, tty: bool) -> None:
            super().__init__()
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    for tty in (False, True):
        stream = Stream(tty)
        monkeypatch.setattr(sys, "stderr", stream)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            cli._banner(args, settings, server)
        # not a terminal: one log line that names the gallery but never holds a signed link
        text = stream.getvalue() if tty else caplog.text
        assert ("http://127.0.0.1:8123/gallery?exp=" in text) is tty and "gallery" in text
        assert ("sig=" in caplog.text) is False
    assert re.search(r"sig=[0-9a-f]{64}", text)


def test_the_gallery_command_stays_on_loopback(env: dict[str, str]) -> None:
    done = subprocess.run([*EASEL, "gallery", "--host", "0.0.0.0"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "loopback only" in done.stderr and done.stdout == ""


_HOST_SCRIPT = """
const app = document.getElementById("app"); window.seen = [];
const images = [{uri: "easel://images/202611-aaaa.png", prompt: "a lighthouse at dusk", model: "Flux 1.1 Pro"},
                {uri: "easel://images/202611-bbbb.png", prompt: "a red fox in fresh snow", model: "Recraft v3"}];
window.addEventListener("message", (e) => {
  if (e.source !== app.contentWindow) return;
  const m = e.data; window.seen.push(m);
  const answer = (result) => app.contentWindow.postMessage({jsonrpc: "2.0", id: m.id, result}, "*");
  if (m.method === "ui/initialize") answer({protocolVersion: "2026-01-26", hostInfo: {name: "test-host", version: "1"},
                                            hostCapabilities: {}, hostContext: {}});
  if (m.method === "tools/call") answer({structuredContent: {thumbnails: {}}});
  if (m.method === "ui/message") answer({});
  if (m.method === "ui/notifications/initialized") {
    app.contentWindow.postMessage({jsonrpc: "2.0", method: "ui/notifications/tool-result",
                                   params: {structuredContent: {images}}}, "*");
    const evil = document.createElement("iframe");          // another frame on the page tries to speak for the host
    evil.setAttribute("sandbox", "allow-scripts");
    evil.srcdoc = "<script>const forged = {jsonrpc: '2.0', method: 'ui/notifications/tool-result', params: " +
      "{structuredContent: {images: [{uri: 'easel://images/202611-evil.png', prompt: 'FORGED'}]}}};" +
      "for (let i = 0; i < 5; i++) setTimeout(() => parent.frames[0].postMessage(forged, '*'), 50 * i);" +
      "document.title = 'sent';</" + "script>";
    evil.onload = () => { window.evilDone = true; };
    document.body.appendChild(evil);
  }
});
"""


def test_the_app_view_listens_only_to_its_host(browser: Any) -> None:
    """browse_images' view in a sandboxed frame, as hosts embed it: it renders what its host sends,
    ignores a forged tool result posted by another frame, and hands picked images back to the host."""
    import html

    from playwright.sync_api import expect

    from server.tools.browse import APP_HTML, STYLE

    view = APP_HTML.replace("__STYLE__", STYLE)
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)
    page.set_content(f'<iframe id="app" sandbox="allow-scripts" style="width:880px;height:560px" '
                     f'srcdoc="{html.escape(view, quote=True)}"></iframe><script>{_HOST_SCRIPT}</script>')
    cards = page.frame_locator("#app").locator(".card")
    expect(cards).to_have_count(2)
    page.wait_for_function("window.evilDone === true")
    page.wait_for_timeout(400)          # the forged messages (sent within 200 ms of load) have all arrived
    expect(cards).to_have_count(2)
    expect(page.frame_locator("#app").locator("#grid")).not_to_contain_text("FORGED")
    cards.nth(1).click()
    page.frame_locator("#app").locator("#use").click()
    page.wait_for_function("window.seen.some((m) => m.method === 'ui/message')")
    sent = page.evaluate("window.seen.find((m) => m.method === 'ui/message').params.content[0].text")
    assert sent == "Use these images: easel://images/202611-bbbb.png"
