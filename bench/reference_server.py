"""The time-to-image yardstick: the least an MCP image server can do, and nothing more.

One tool, ``generate``: it creates the prediction with ``Prefer: wait`` (the same model and
input as easel-mcp sends), downloads the output with httpx into memory and returns it as an
image block. It stores nothing, checks nothing and makes no preview. ``bench/download.py``
starts it exactly as it starts easel-mcp and times both, call for call.
"""

import base64
import os

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent

MODEL = "black-forest-labs/flux-1.1-pro"
mcp = MCPServer("reference")
_http: httpx.AsyncClient | None = None


def _client() -> httpx.AsyncClient:
    global _http
    if _http is None:
        _http = httpx.AsyncClient(base_url=os.environ["REPLICATE_BASE_URL"], trust_env=False, timeout=60,
                                  headers={"Authorization": f"Bearer {os.environ['REPLICATE_API_TOKEN']}"})
    return _http


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
    return ImageContent(type="image", data=base64.b64encode(download.content).decode(),
                        mime_type=download.headers.get("content-type", "image/jpeg"))


if __name__ == "__main__":
    mcp.run("stdio")
