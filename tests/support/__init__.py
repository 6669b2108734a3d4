"""Helpers shared by every test directory (one place for each):

- ``images``: real image bytes made with Pillow (``png``) and ``data_uri``.
- ``results``: reading a tool result as its consumer would (``text_of``), files left in a store.
- ``processes``: the real easel-mcp process over HTTP (start, wait for health, stop), the
  raw JSON-RPC pieces used to probe it and a bearer-token client.
- ``replicate``, ``oss``: the loopback fakes' credentials and the fast settings tests use.

The fixtures most tests share (``replicate_fake``, ``env``, ``settings``, ``server``) are in
tests/conftest.py.
"""
