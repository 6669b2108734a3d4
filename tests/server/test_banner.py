"""Start-up output: four lines for a person at a terminal, one log line under a client."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

EASEL = [sys.executable, "-m", "server"]


def test_under_a_client_start_up_is_one_log_line(env: dict[str, str]) -> None:
    proc = subprocess.run(EASEL, env={**os.environ, **env}, input=b"", capture_output=True, timeout=30)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    started = [line for line in lines if "started" in line]
    assert len(started) == 1, lines
    [line] = started
    assert " INFO easel: easel-mcp " in line and "transport stdio" in line
    assert env["EASEL_STORAGE_DIR"] in line and "providers with keys: replicate" in line
    assert not any("not by hand" in line for line in lines)
    assert env["REPLICATE_API_TOKEN"] not in proc.stderr.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_at_a_terminal_the_banner_says_how_to_use_the_server(env: dict[str, str]) -> None:
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(EASEL, env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=follower)
    os.close(follower)
    try:
        proc.stdin.close()   # EOF on stdin: the stdio server stops after the banner
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:   # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=30) is not None
        assert proc.stdout.read() == b""
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = out.decode().replace("\r\n", "\n")
    assert "MCP image generation server" in text
    assert f"images stored in: {env['EASEL_STORAGE_DIR']}" in text
    assert "start it from an MCP client" in text and "not by hand" in text
