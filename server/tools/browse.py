"""browse_images: the gallery inside the chat, as an MCP App (``ui://easel/gallery.html``).

Hosts that render MCP Apps show the page in a sandboxed frame. It gets the tool's
result from the host (``ui/notifications/tool-result``), asks for thumbnails with
the app-only tool ``image_thumbnails`` (hidden from the model), and sends the
images the user picks back into the conversation (``ui/message``). The page loads
nothing from anywhere: its CSP declares no domains, images arrive as data: URIs.

Hosts without apps get the normal search_images answer: text with each image's uri,
url and prompt, resource links, and structured content.
"""

import base64
from typing import Annotated

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from server.catalog import Filters
from server.config import Settings
from server.gallery_page import STYLE
from server.icons import icons
from server.storage import StorageError, parse_image_id
from server.thumbnails import thumbnail
from server.tools._common import clean_text, state_of
from server.tools.search import READS, SearchResult, search_result

__all__ = ["APP_URI", "make_apps"]

APP_URI = "ui://easel/gallery.html"
MAX_THUMBNAILS = 24


class Thumbnails(BaseModel):
    thumbnails: dict[str, str] = Field(description="image id -> data: URI of its JPEG thumbnail")


def make_apps(settings: Settings) -> Apps:
    apps = Apps()

    @apps.tool(resource_uri=APP_URI, name="browse_images", title="Browse stored images", annotations=READS,
               icons=icons("browse"),
               description=(
                   "Show the user a grid of stored images (newest first, optionally narrowed by words from "
                   "their prompts) where they can pick some to hand back to you. In hosts without MCP Apps "
                   "this answers like search_images: each image's uri, url and prompt."))
    async def browse_images(
        ctx: Context,
        query: Annotated[str | None, Field(max_length=500, description=(
            "Words to find in the prompts (English or Chinese); leave out to show the newest images."))] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_THUMBNAILS, description="How many images to show.")] = 24,
    ) -> Annotated[CallToolResult, SearchResult]:
        return await search_result(state_of(ctx), Filters(query=clean_text(query, "query")), limit, None,
                                   previews=False)

    @apps.tool(resource_uri=APP_URI, visibility=["app"], name="image_thumbnails", title="Image thumbnails",
               annotations=READS, icons=icons("thumbnails"),
               description="Thumbnails of stored images, for the browse_images view.")
    async def image_thumbnails(
        ctx: Context,
        ids: Annotated[list[str], Field(max_length=MAX_THUMBNAILS, description="Image ids (202611-<hash>.png).")],
    ) -> Thumbnails:
        storage = state_of(ctx).storage
        out: dict[str, str] = {}
        for image_id in ids:
            try:
                parse_image_id(image_id)
                data = await thumbnail(storage, image_id)
            except (StorageError, OSError, ValueError):
                continue   # gone or unreadable: the view shows a placeholder
            out[image_id] = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        return Thumbnails(thumbnails=out)

    apps.add_html_resource(
        APP_URI, APP_HTML.replace("__STYLE__", STYLE), name="easel-gallery", title="easel gallery",
        description="Stored images as a grid; pick some to hand back to the assistant.",
        # nothing is fetched from anywhere: no connect, resource or frame domains
        csp=ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[]),
        prefers_border=True)
    return apps


APP_HTML = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>easel gallery</title><style>__STYLE__
body { background:transparent; } main { padding:12px; } .bar { display:flex; gap:10px; align-items:center;
  margin-bottom:12px; } .bar .count { margin-left:0; } .grid { grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); }
</style></head>
<body><main>
<div class="bar"><span class="count" id="count">Waiting for images…</span><span style="flex:1"></span>
<button class="primary" id="use" disabled>Use selected</button></div>
<div class="grid" id="grid"></div></main>
<script>
"use strict";
const pending = new Map(); let nextId = 1; const picked = new Set(); let images = [];
function request(method, params) {
  const id = nextId++;
  return new Promise((resolve, reject) => { pending.set(id, { resolve, reject });
    window.parent.postMessage({ jsonrpc: "2.0", id, method, params }, "*"); });
}
function notify(method, params) { window.parent.postMessage({ jsonrpc: "2.0", method, params }, "*"); }
function render(result) {
  images = ((result && result.structuredContent) || {}).images || [];
  const grid = document.getElementById("grid"); grid.replaceChildren(); picked.clear(); update();
  document.getElementById("count").textContent = images.length ? images.length + " image(s) — click to pick" : "No images match.";
  for (const it of images) {
    const id = it.uri.split("/").pop();
    const c = document.createElement("div"); c.className = "card"; c.tabIndex = 0; c.dataset.id = id;
    const th = document.createElement("div"); th.className = "thumb"; const img = document.createElement("img");
    img.alt = it.prompt; th.appendChild(img);
    const info = document.createElement("div"); info.className = "info";
    const p = document.createElement("div"); p.className = "prompt"; p.textContent = it.user_prompt || it.prompt;
    const m = document.createElement("div"); m.className = "meta"; m.textContent = [it.model, (it.created || "").slice(0, 10)].filter(Boolean).join(" · ");
    info.append(p, m); c.append(th, info);
    const toggle = () => { picked.has(it.uri) ? picked.delete(it.uri) : picked.add(it.uri); c.classList.toggle("picked"); update(); };
    c.addEventListener("click", toggle);
    c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
    grid.appendChild(c);
  }
  const ids = images.map((it) => it.uri.split("/").pop());
  if (ids.length) request("tools/call", { name: "image_thumbnails", arguments: { ids } }).then((r) => {
    const thumbs = ((r && r.structuredContent) || {}).thumbnails || {};
    for (const c of grid.children) if (thumbs[c.dataset.id]) c.querySelector("img").src = thumbs[c.dataset.id];
  }).catch(() => {});
}
function update() { const b = document.getElementById("use"); b.disabled = !picked.size;
  b.textContent = picked.size ? "Use " + picked.size + " selected" : "Use selected"; }
document.getElementById("use").onclick = () => {
  const list = [...picked];
  request("ui/message", { role: "user", content: [{ type: "text", text: "Use these images: " + list.join(" ") }] }).catch(() => {});
};
window.addEventListener("message", (e) => {
  // only the host that embeds this view speaks for it: another frame or window could post a forged
  // tool result or answer (its origin is unknown to us: hosts sandbox views), but it is never our parent
  if (e.source !== window.parent) return;
  const msg = e.data; if (!msg || msg.jsonrpc !== "2.0") return;
  if (msg.id !== undefined && pending.has(msg.id) && !msg.method) {
    const { resolve, reject } = pending.get(msg.id); pending.delete(msg.id);
    msg.error ? reject(msg.error) : resolve(msg.result); return;
  }
  if (msg.method === "ui/notifications/tool-result") render(msg.params);
});
request("ui/initialize", { protocolVersion: "2026-01-26", appInfo: { name: "easel-gallery", version: "1" },
  appCapabilities: {} }).then(() => notify("ui/notifications/initialized", {})).catch(() => {});
</script></body></html>
"""
