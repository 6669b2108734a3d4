"""easel-mcp: the MCP application (tools, resources, storage, transports)."""
