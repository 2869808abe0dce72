"""HTTP control of a running generator (`medallion generate --serve HOST:PORT`).

FastAPI on uvicorn, in a background thread next to the run loop. The OpenAPI page is at
`/docs`. Endpoints:

- `GET /api/health`: status (running | paused | stopped), uptime, mode, cadence, and per
  entity the batches written, the last batch and its simulated time, and idle seconds;
- `POST /api/pause`: stop after the batch in hand;
- `POST /api/resume`: continue; after a clean, the baseline (batch 0 with its dimensions) is
  written again at once and the answer says so;
- `POST /api/clean`: delete every landing file and manifest; 409 unless paused;
- `GET /api/logs?limit=&since=&level=`: structured entries after `since`, and `nextSince`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from pydantic import BaseModel

from generators.runner import Runner
from medallion import __version__
from medallion.errors import ConfigError


class LogsResponse(BaseModel):
    """A page of log entries; pass `nextSince` as `since` to get the following ones."""

    entries: list[dict[str, Any]]
    nextSince: int


def parse_address(text: str) -> tuple[str, int]:
    """'HOST:PORT', ':PORT' (loopback) or '[::1]:PORT' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError("--serve", [f"{text!r} is not HOST:PORT; write e.g. 127.0.0.1:8765"])
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def create_app(runner: Runner) -> Any:
    """The FastAPI application controlling one runner."""
    from fastapi import FastAPI, HTTPException, Query

    app = FastAPI(
        title="medallion generator",
        version=__version__,
        description="Pause, resume, clean and watch a running `medallion generate`.",
    )

    @app.get("/api/health", summary="Status, uptime, cadence and per-entity progress")
    def health() -> dict[str, Any]:
        return runner.health()

    @app.post("/api/pause", summary="Pause after the batch in hand")
    def pause() -> dict[str, Any]:
        return runner.pause()

    @app.post("/api/resume", summary="Resume; regenerates the baseline after a clean")
    def resume() -> dict[str, Any]:
        return runner.resume()

    @app.post(
        "/api/clean",
        summary="Delete landing files and manifests (only while paused)",
        responses={409: {"description": "the generator is not paused"}},
    )
    def clean() -> dict[str, Any]:
        try:
            return runner.clean()
        except RuntimeError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @app.get("/api/logs", summary="Structured log entries after `since`", response_model=LogsResponse)
    def logs(
        limit: int = Query(100, ge=1, le=10_000, description="at most this many entries"),
        since: int = Query(0, ge=0, description="only entries with seq above this (use nextSince)"),
        level: Literal["debug", "info", "warning", "error"] = Query("debug", description="minimum level"),
    ) -> LogsResponse:
        entries, next_since = runner.log.query(since=since, limit=limit, level=level)
        return LogsResponse(entries=entries, nextSince=next_since)

    return app


class ControlServer:
    """uvicorn serving the control app in a daemon thread."""

    def __init__(self, runner: Runner, address: str) -> None:
        import uvicorn

        self.host, self.port = parse_address(address)
        config = uvicorn.Config(create_app(runner), host=self.host, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="medallion-control", daemon=True)
        self.runner = runner

    def start(self, timeout: float = 10.0) -> None:
        """Start serving; returns once the port is open."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError("--serve", [f"could not listen on {self.host}:{self.port}; is the port free?"])
            time.sleep(0.02)
        self.runner.log.log("info", "serve", f"control API on http://{self.host}:{self.port} (docs at /docs)")

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self.thread.join(timeout=10)
