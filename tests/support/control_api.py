"""A real `medallion generate --serve` process for the control API tests: start it, read the token
it generates, wait for what it answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def served_environment(**extra: str) -> dict[str, str]:
    """This environment without a control token or host list of the caller's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MEDALLION_CONTROL_TOKEN", "MEDALLION_CONTROL_HOSTS")}
    return {**env, **extra}


def start_served(data: Path, port: int, env: dict[str, str] | None = None, speed: float = 9000) -> subprocess.Popen[bytes]:
    """`medallion generate --serve` on 127.0.0.1:port; 15-minute batches at 9000x: one every 0.1 s."""
    return subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small",
         "--seed", "5", "--data", str(data), "--speed", str(speed), "--serve", f"127.0.0.1:{port}", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=served_environment() if env is None else env,
    )


def read_token(data: Path, process: subprocess.Popen[bytes]) -> str:
    """The generated token, once the generator has written its file."""
    path = data / "manifests" / ".control-token"
    deadline = time.monotonic() + 60
    while not path.is_file() or not path.read_text(encoding="utf-8").strip():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "no token file"
        time.sleep(0.05)
    return path.read_text(encoding="utf-8").strip()
