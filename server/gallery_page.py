"""The gallery's HTML, CSS and JavaScript: one self-contained page, no build step, no CDN.

Kept as Python strings so the package needs no data files. The same stylesheet
serves the MCP App (server.tools.browse).
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

__all__ = ["CSP", "SCRIPT", "STYLE", "login_html", "page_html"]

STYLE = r"""
:root { color-scheme: dark; --bg:#111317; --panel:#1a1d23; --card:#20242b; --line:#2e333c; --text:#e8eaed;
  --muted:#9aa0aa; --accent:#7cb7ff; --danger:#ff6b6b; --radius:10px; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; background:var(--bg); color:var(--text);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","PingFang SC","Microsoft YaHei",sans-serif; }
header { position:sticky; top:0; z-index:5; background:rgba(17,19,23,.94); backdrop-filter:blur(8px);
  border-bottom:1px solid var(--line); padding:12px 20px 10px; }
header .row { display:flex; flex-wrap:wrap; gap:10px; align-items:center; }
header .row + .row { margin-top:9px; }
header label { color:var(--muted); font-size:12px; display:flex; align-items:center; gap:6px; }
select { max-width:190px; }
header h1 { font-size:17px; margin:0 14px 0 0; font-weight:650; letter-spacing:.2px; white-space:nowrap; }
header h1 span { color:var(--accent); }
input, select, button { font:inherit; color:var(--text); background:var(--panel); border:1px solid var(--line);
  border-radius:8px; padding:7px 10px; }
input[type=search] { flex:1 1 320px; min-width:200px; padding:9px 12px; }
input[type=date] { padding:6px 8px; }
input:focus, select:focus, button:focus-visible { outline:2px solid var(--accent); outline-offset:1px; }
button { cursor:pointer; } button:hover { border-color:var(--accent); }
button.primary { background:var(--accent); color:#08121f; border-color:var(--accent); font-weight:600; }
button.danger { color:var(--danger); } button.danger.confirm { background:var(--danger); color:#1b0707; }
.count { color:var(--muted); margin-left:auto; white-space:nowrap; }
main { padding:18px 20px 60px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(210px,1fr)); gap:16px; align-items:start; }
.card { background:var(--card); border:1px solid var(--line); border-radius:var(--radius); overflow:hidden;
  cursor:pointer; display:flex; flex-direction:column; transition:transform .12s, border-color .12s; }
.card:hover, .card:focus-visible { transform:translateY(-2px); border-color:var(--accent); outline:none; }
.card .thumb { aspect-ratio:1/1; min-height:0; overflow:hidden; background:#0b0c0f; }
.card img { width:100%; height:100%; object-fit:cover; display:block; }
.card .info { padding:9px 11px 11px; }
.card .prompt { display:-webkit-box; -webkit-line-clamp:2; -webkit-box-orient:vertical; overflow:hidden;
  min-height:2.9em; }
.card .meta { color:var(--muted); font-size:12px; margin-top:5px; white-space:nowrap; overflow:hidden;
  text-overflow:ellipsis; }
.card.picked { border-color:var(--accent); box-shadow:0 0 0 2px var(--accent) inset; }
.empty, .status { color:var(--muted); text-align:center; padding:50px 0; }
#sentinel { height:40px; }
dialog { width:min(1100px,94vw); max-height:92vh; padding:0; border:1px solid var(--line); border-radius:14px;
  background:var(--panel); color:var(--text); }
dialog::backdrop { background:rgba(0,0,0,.72); }
.viewer { display:grid; grid-template-columns:minmax(0,1.6fr) minmax(260px,1fr); max-height:92vh; }
.viewer .pic { background:#0b0c0f; display:flex; align-items:center; justify-content:center; min-height:300px; }
.viewer .pic img { width:100%; height:auto; max-height:88vh; object-fit:contain; display:block; }
.viewer .side { padding:18px; overflow:auto; display:flex; flex-direction:column; gap:12px; }
.viewer .side p { margin:0 28px 0 0; white-space:pre-wrap; word-break:break-word; font-size:15px; }
.viewer dl { display:grid; grid-template-columns:auto 1fr; gap:4px 12px; margin:0; font-size:13px; }
.viewer dt { color:var(--muted); } .viewer dd { margin:0; word-break:break-all; }
.actions { display:flex; flex-wrap:wrap; gap:8px; }
.actions a { text-decoration:none; }
.close { position:absolute; top:8px; right:10px; background:rgba(0,0,0,.5); border:none; font-size:20px;
  line-height:1; padding:6px 10px; }
.toast { position:fixed; bottom:20px; left:50%; transform:translateX(-50%); background:#2b3340;
  border:1px solid var(--line); padding:9px 16px; border-radius:20px; opacity:0; transition:opacity .2s; }
.toast.show { opacity:1; }
.login { max-width:460px; margin:12vh auto; background:var(--panel); border:1px solid var(--line);
  border-radius:14px; padding:26px; }
.login h1 { font-size:18px; margin:0 0 10px; } .login h1 span { color:var(--accent); }
.login form { display:flex; gap:8px; margin-top:14px; } .login input { flex:1; }
@media (max-width:760px) { .viewer { grid-template-columns:1fr; } }
"""

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>__TITLE__</title><style>__STYLE__</style></head>
<body>
<header><form id="filters" role="search">
  <div class="row">
    <h1><span>easel</span> gallery</h1>
    <input type="search" id="q" name="q" placeholder="Search prompts — English or 中文" aria-label="Search prompts">
    <span class="count" id="count"></span>
  </div>
  <div class="row">
    <select id="model" name="model" aria-label="Model"><option value="">All models</option></select>
    <select id="provider" name="provider" aria-label="Provider"><option value="">All providers</option></select>
    <select id="tool" name="tool" aria-label="Tool"><option value="">All tools</option></select>
    <select id="size" name="size" aria-label="Shape"><option value="">Any shape</option>
      <option>square</option><option>landscape</option><option>portrait</option><option>wide</option><option>tall</option>
    </select>
    <label>from <input type="date" id="since" name="since" aria-label="From date"></label>
    <label>to <input type="date" id="until" name="until" aria-label="To date"></label>
    <button type="reset" id="reset">Clear</button>
  </div>
</form></header>
<main>
  <div class="grid" id="grid" aria-live="polite"></div>
  <div class="status" id="status"></div>
  <div id="sentinel"></div>
</main>
<dialog id="viewer" aria-label="Image">
  <button class="close" id="close" aria-label="Close">&times;</button>
  <div class="viewer">
    <div class="pic"><img id="full" alt=""></div>
    <div class="side">
      <p id="v-prompt"></p>
      <dl id="v-facts"></dl>
      <div class="actions">
        <a id="v-download" download><button type="button" class="primary">Download</button></a>
        <button type="button" id="v-copy">Copy URI</button>
        <button type="button" id="v-delete" class="danger">Delete…</button>
      </div>
      <div class="actions" id="v-confirm" hidden>
        <span>Delete this image from storage, everywhere it is kept? This cannot be undone.</span>
        <button type="button" id="v-delete-yes" class="danger confirm">Delete for good</button>
        <button type="button" id="v-delete-no">Keep it</button>
      </div>
    </div>
  </div>
</dialog>
<div class="toast" id="toast" role="status"></div>
<script>__SCRIPT__</script>
</body></html>
"""

SCRIPT = r"""
"use strict";
const $ = (id) => document.getElementById(id);
const state = { cursor: null, loading: false, done: false, items: [], current: -1, gen: 0, facets: false };
const fmtDate = (s) => s ? s.slice(0, 16).replace("T", " ") + " UTC" : "";
const MONTHS = ["Jan","Feb","Mar","Apr","May","Jun","Jul","Aug","Sep","Oct","Nov","Dec"];
const shortDate = (s) => s ? MONTHS[+s.slice(5, 7) - 1] + " " + (+s.slice(8, 10)) : "";
function toast(text) { const t = $("toast"); t.textContent = text; t.classList.add("show");
  clearTimeout(toast.timer); toast.timer = setTimeout(() => t.classList.remove("show"), 2200); }
function params() {
  const p = new URLSearchParams();
  for (const k of ["q", "model", "provider", "tool", "size", "since", "until"]) { const v = $(k).value.trim(); if (v) p.set(k, v); }
  return p;
}
function fillFacets(f) {
  if (!f || state.facets) return; state.facets = true;
  for (const k of ["model", "provider", "tool"]) for (const v of f[k] || []) {
    const o = document.createElement("option"); o.value = v; o.textContent = v; $(k).appendChild(o); }
}
function card(item, index) {
  const c = document.createElement("div"); c.className = "card"; c.tabIndex = 0; c.dataset.id = item.id;
  c.setAttribute("role", "button"); c.setAttribute("aria-label", item.prompt);
  const th = document.createElement("div"); th.className = "thumb";
  const img = document.createElement("img"); img.loading = "lazy"; img.src = item.thumb; img.alt = item.prompt;
  th.appendChild(img);
  const info = document.createElement("div"); info.className = "info";
  const p = document.createElement("div"); p.className = "prompt"; p.textContent = item.user_prompt || item.prompt;
  const m = document.createElement("div"); m.className = "meta";
  m.textContent = [item.model, item.width ? item.width + "×" + item.height : "", shortDate(item.created)]
    .filter(Boolean).join(" · "); m.title = m.textContent;
  info.append(p, m); c.append(th, info);
  c.addEventListener("click", () => open_(index));
  c.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open_(index); } });
  return c;
}
async function load(reset) {
  if (reset) { state.gen++; state.cursor = null; state.done = false; state.items = []; $("grid").replaceChildren(); }
  if (state.loading || state.done) return;
  state.loading = true; const gen = state.gen; $("status").textContent = "Loading…";
  const p = params(); if (state.cursor) p.set("cursor", state.cursor);
  try {
    const r = await fetch("/gallery/api/images?" + p, { credentials: "same-origin" });
    const body = await r.json();
    if (gen !== state.gen) return;
    if (!r.ok) { $("status").textContent = body.error || ("Error " + r.status); state.done = true; return; }
    fillFacets(body.facets);
    for (const item of body.images) { state.items.push(item); $("grid").appendChild(card(item, state.items.length - 1)); }
    state.cursor = body.next_cursor; state.done = !body.next_cursor;
    $("count").textContent = body.total === 1 ? "1 image" : body.total + " images";
    $("status").textContent = state.items.length ? "" : (p.toString() ? "No image matches." : "No images yet.");
  } catch (e) { $("status").textContent = "Could not load images: " + e.message; }
  finally { if (gen === state.gen) state.loading = false; }
  if (!state.done && $("sentinel").getBoundingClientRect().top < innerHeight + 400) load(false);
}
function fact(dl, k, v) { if (v === null || v === undefined || v === "") return;
  const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v;
  dl.append(dt, dd); }
function open_(index) {
  const it = state.items[index]; if (!it) return; state.current = index;
  $("full").src = it.full; $("full").alt = it.prompt; $("v-prompt").textContent = it.prompt;
  const dl = $("v-facts"); dl.replaceChildren();
  if (it.user_prompt) fact(dl, "asked for", it.user_prompt);
  fact(dl, "model", it.model); fact(dl, "provider", it.provider); fact(dl, "tool", it.tool);
  fact(dl, "size", it.width ? it.width + " × " + it.height : ""); fact(dl, "seed", it.seed);
  fact(dl, "style", it.style && it.style !== "any" ? it.style : "");
  fact(dl, "cost", it.cost_usd !== null && it.cost_usd !== undefined ? "≈ $" + it.cost_usd.toFixed(3) : "");
  fact(dl, "created", fmtDate(it.created)); fact(dl, "uri", it.uri);
  $("v-download").href = it.full + "?download=1"; $("v-download").setAttribute("download", it.id);
  $("v-confirm").hidden = true; $("v-delete").hidden = false;
  if (!$("viewer").open) $("viewer").showModal();
}
async function copy(text) {
  try { await navigator.clipboard.writeText(text); }
  catch (e) { const t = document.createElement("textarea"); t.value = text; document.body.appendChild(t); t.select();
    document.execCommand("copy"); t.remove(); }
  toast("Copied " + text);
}
$("v-copy").onclick = () => copy(state.items[state.current].uri);
$("v-delete").onclick = () => { $("v-confirm").hidden = false; $("v-delete").hidden = true; $("v-delete-no").focus(); };
$("v-delete-no").onclick = () => { $("v-confirm").hidden = true; $("v-delete").hidden = false; };
$("v-delete-yes").onclick = async () => {
  const it = state.items[state.current];
  const r = await fetch("/gallery/api/images/" + encodeURIComponent(it.id),
    { method: "DELETE", credentials: "same-origin", headers: { "X-Easel-Gallery": "delete" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { toast(body.error || "Could not delete (" + r.status + ")"); return; }
  $("viewer").close(); toast("Deleted " + it.uri); load(true);
};
$("close").onclick = () => $("viewer").close();
$("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) $("viewer").close(); });
document.addEventListener("keydown", (e) => {
  if (!$("viewer").open) return;
  if (e.key === "ArrowRight") open_(Math.min(state.current + 1, state.items.length - 1));
  if (e.key === "ArrowLeft") open_(Math.max(state.current - 1, 0));
});
let timer = null;
$("filters").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(true), 250); });
$("filters").addEventListener("submit", (e) => { e.preventDefault(); load(true); });
$("filters").addEventListener("reset", () => setTimeout(() => load(true), 0));
new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) load(false); },
  { rootMargin: "400px" }).observe($("sentinel"));
load(true);
"""

_LOGIN = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="no-referrer"><title>__TITLE__</title><style>__STYLE__</style></head>
<body><div class="login"><h1><span>easel</span> gallery</h1><p id="message">__MESSAGE__</p>__FORM__</div></body></html>
"""

_FORM = """<form method="post" action="/gallery/login"><input type="password" name="token" autocomplete="off"
placeholder="Server token (EASEL_AUTH_TOKEN)" aria-label="Server token" required>
<button class="primary" type="submit">Open</button></form>"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: The pages' Content-Security-Policy: only this stylesheet and this script run (by hash, no
#: 'unsafe-inline'), images and requests only from the server itself, no frames, no plugins.
CSP = (f"default-src 'none'; img-src 'self' data:; style-src {_sha256(STYLE)}; script-src {_sha256(SCRIPT)}; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def page_html(title: str) -> str:
    return _PAGE.replace("__STYLE__", STYLE).replace("__SCRIPT__", SCRIPT).replace("__TITLE__", escape(title))


def login_html(title: str, message: str, *, token_form: bool) -> str:
    return (_LOGIN.replace("__STYLE__", STYLE).replace("__TITLE__", escape(title))
            .replace("__MESSAGE__", escape(message)).replace("__FORM__", _FORM if token_form else ""))
