"""The yardstick: the least an MCP image server can do, and nothing more.

One tool, ``generate``: it creates the prediction with ``Prefer: wait`` (the same model and
input as easel-mcp sends), downloads the output with httpx into memory and returns one image
block. It stores nothing, checks nothing, keeps no record and returns no link or metadata.

* As started by ``bench/download.py`` (over stdio, no options): the block is the whole image.
* With ``REFERENCE_PREVIEW=1``: the block is the small preview easel-mcp returns instead
  (long side 512 px, JPEG quality 80, Pillow ``draft`` + ``thumbnail``, made in a worker
  thread), without easel's size cap or fallback qualities.
* ``--transport http --port N [--stateless]``, as ``bench/common.http_server`` starts easel-mcp
  (``bench/team.py``): streamable HTTP on 127.0.0.1 with ``GET /healthz``, uvicorn as easel runs
  it (no access log, 30 s keep-alive), but no auth, limits or drain.

Its httpx client keeps up to 64 connections alive (easel-mcp runs up to 64 Replicate jobs at
once): httpx's default of 20 would close connections that a burst of 50 calls needs again.
"""

import argparse
import base64
import io
import os

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent
from starlette.requests import Request
from starlette.responses import PlainTextResponse

MODEL = "black-forest-labs/flux-1.1-pro"
PREVIEW_PX = 512
mcp = MCPServer("reference")
_http: httpx.AsyncClient | None = None


def _client() -> httpx.AsyncClient:
    global _http
    if _http is None:
        _http = httpx.AsyncClient(base_url=os.environ["REPLICATE_BASE_URL"], trust_env=False, timeout=60,
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
                                  headers={"Authorization": f"Bearer {os.environ['REPLICATE_API_TOKEN']}"})
    return _http


def _preview(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (PREVIEW_PX, PREVIEW_PX))
        img.thumbnail((PREVIEW_PX, PREVIEW_PX))
        rgb = img.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=80)
    return out.getvalue()


@mcp.tool(structured_output=False)
async def generate(prompt: str) -> ImageContent:
    """Generate an image and return it."""
    http = _client()
    created = await http.post(f"/v1/models/{MODEL}/predictions", headers={"Prefer": "wait=20"},
                              json={"input": {"prompt": prompt, "aspect_ratio": "custom", "width": 1024, "height": 1024,
                                              "output_format": "jpg", "output_quality": 90}})
    created.raise_for_status()
    output = created.json()["output"]
    download = await http.get(output if isinstance(output, str) else output[0])
    download.raise_for_status()
    if os.environ.get("REFERENCE_PREVIEW") == "1":
        data, mime = await anyio.to_thread.run_sync(_preview, download.content), "image/jpeg"
    else:
        data, mime = download.content, download.headers.get("content-type", "image/jpeg")
    return ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime)


@mcp.custom_route("/healthz", methods=["GET"])
async def healthz(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--stateless", action="store_true")
    args = p.parse_args()
    if args.transport == "stdio":
        mcp.run("stdio")
        return
    import uvicorn

    app = mcp.streamable_http_app(stateless_http=args.stateless, host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                timeout_keep_alive=30)


if __name__ == "__main__":
    main()
