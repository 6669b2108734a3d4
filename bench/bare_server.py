"""The cold-start yardstick: a bare MCPServer with one trivial tool, on stdio.

``bench/cold.py`` starts this exactly the way it starts easel-mcp and times
process spawn -> ``tools/list`` answered for both; the ratio is what easel-mcp
adds on top of the SDK itself.
"""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    mcp.run("stdio")
