"""A real `medallion generate --serve` process for the control API tests: start it, read the token
it generates, wait for what it answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def start_served(data: Path, port: int, env: dict[str, str] | None = None, speed: float = 9000,
                 scenario: str = "driving", profile: str | None = "small", seed: int = 5) -> subprocess.Popen[bytes]:
    """`medallion generate --serve` on 127.0.0.1:port (driving's 15-minute batches at 9000x: one every 0.1 s)."""
    profiles = ["--profile", profile] if profile else []
    return subprocess.Popen(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", scenario, *profiles,
         "--seed", str(seed), "--data", str(data), "--speed", str(speed), "--serve", f"127.0.0.1:{port}", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=served_environment() if env is None else env,
    )


@contextmanager
def served_client(data: Path, port: int, process: subprocess.Popen[bytes], entity: str,
                  timeout: float = 30.0) -> Iterator[httpx.Client]:
    """A client holding the token of a started `--serve` process, once `entity` has 2 batches;
    the process gets SIGTERM afterwards."""
    client = None
    try:
        token = read_token(data, process)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"})
        wait_for(lambda: client.get("/api/health").json()["entities"][entity]["batches"] >= 2, timeout=timeout)
        yield client
    finally:
        if client is not None:
            client.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=2 * timeout)


def read_token(data: Path, process: subprocess.Popen[bytes]) -> str:
    """The generated token, once the generator has written its file."""
    path = data / "manifests" / ".control-token"
    deadline = time.monotonic() + 60
    while not path.is_file() or not path.read_text(encoding="utf-8").strip():
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, "no token file"
        time.sleep(0.05)
    return path.read_text(encoding="utf-8").strip()
