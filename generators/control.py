"""HTTP control of a running generator (`medallion generate --serve HOST:PORT`).

FastAPI on uvicorn, in a background thread next to the run loop. The OpenAPI page is at
`/docs`. Endpoints:

- `GET /api/health`: status (running | paused | stopped), uptime, mode, cadence, and per
  entity the batches written, the last batch and its simulated time, and idle seconds;
- `POST /api/pause`: stop after the batch in hand;
- `POST /api/resume`: continue; after a clean, the baseline (batch 0 with its dimensions) is
  written again at once and the answer says so;
- `POST /api/clean`: delete every landing file and manifest the generator wrote; 409 unless
  paused;
- `POST /api/anomalies`: put a spike, stuck sensor or drift on one unit's sensor from the next
  batch on; it lands in the manifests' `anomalies` like the generated ones (`source: api`);
- `GET /api/logs?limit=&since=&level=`: structured entries after `since`, and `nextSince`.

Access: every endpoint but `/api/health` (and the OpenAPI pages) needs
`Authorization: Bearer <token>`, the token from `MEDALLION_CONTROL_TOKEN` or, when that is unset,
a random one written to `DIR/manifests/.control-token` (readable by the owner only). `/api/logs`
needs it too because its entries name paths on the machine. Every request must name an allowed
`Host` (the bound address, loopback names when bound to loopback or all interfaces, and
`MEDALLION_CONTROL_HOSTS`), so a DNS-rebinding page cannot reach the API under its own name; a
request carrying an `Origin` must come from the API's own origin, and POST bodies, if any, must
be JSON, so a cross-site "simple request" from a browser is refused before the token is even
looked at.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.middleware.trustedhost import TrustedHostMiddleware

from generators.runner import Runner
from medallion.contracts.errors import ConfigError, GeneratorError, MedallionError
from medallion.contracts.layout import DataRoot
from medallion.contracts.version import __version__

TOKEN_ENV = "MEDALLION_CONTROL_TOKEN"
HOSTS_ENV = "MEDALLION_CONTROL_HOSTS"
TOKEN_FILE_NAME = ".control-token"
# Printable ASCII without spaces (it travels in an HTTP header), long enough not to be guessed.
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{16,}")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\]")


# Module level: FastAPI resolves the endpoints' (string) annotations in this module's namespace.
_BEARER = HTTPBearer(auto_error=False, description="the token from MEDALLION_CONTROL_TOKEN or DIR/manifests/.control-token")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


MAX_ANOMALY_SECONDS = 7 * 86_400  # a stuck sensor or a drift lasts at most a week of simulated time
MAX_ANOMALY_MAGNITUDE = 1e6


class AnomalyRequest(BaseModel):
    """An anomaly to put on the next batch's readings of one unit's sensor (see the manifest's
    `anomalies`). A spike changes one reading by `magnitude`; a stuck sensor repeats its first
    value for `duration_seconds`; a drift adds up to `magnitude` over `duration_seconds`.
    Values stay within the field's range, so the readings remain valid."""

    model_config = ConfigDict(extra="forbid")

    subtype: Literal["spike", "stuck", "drift"]
    engine: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                        description="the unit's key, e.g. eng-0003")
    sensor: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="a degradation sensor field, e.g. t24_lpc_outlet_k")
    duration_seconds: float | None = Field(default=None, gt=0, le=MAX_ANOMALY_SECONDS, allow_inf_nan=False,
                                           description="simulated seconds (stuck, drift)")
    magnitude: float | None = Field(default=None, ge=-MAX_ANOMALY_MAGNITUDE, le=MAX_ANOMALY_MAGNITUDE, allow_inf_nan=False,
                                    description="the change in the field's unit (spike, drift)")

    @model_validator(mode="after")
    def _fits_subtype(self) -> AnomalyRequest:
        if self.subtype in ("spike", "drift") and not self.magnitude:
            raise ValueError(f"a {self.subtype} needs a non-zero magnitude, e.g. 25.0")
        if self.subtype == "stuck" and self.magnitude is not None:
            raise ValueError("a stuck sensor repeats its value: leave out magnitude")
        if self.subtype == "spike" and self.duration_seconds is not None:
            raise ValueError("a spike is one reading: leave out duration_seconds")
        if self.subtype in ("stuck", "drift") and self.duration_seconds is None:
            raise ValueError(f"a {self.subtype} needs duration_seconds, e.g. 7200")
        return self


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


def _host_name(host: str) -> str:
    """A host as it appears in a `Host` header: lower case, IPv6 literals in brackets."""
    host = host.strip().lower()
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return host


def allowed_hosts(bound: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The `Host` names the API answers to.

    Args:
        bound: the address the server listens on (from `--serve`).
        environ: where `MEDALLION_CONTROL_HOSTS` (comma-separated names) is read.

    Returns:
        The bound host, the loopback names when it is loopback or every interface, and the
        configured names.

    Raises:
        ConfigError: a configured name is `*` or not a host name.
    """
    names: list[str] = []
    try:
        address = ipaddress.ip_address(bound.strip("[]"))
        local = address.is_loopback or address.is_unspecified
    except ValueError:
        local = bound.lower() == "localhost"
    if local:
        names += _LOOPBACK_NAMES
    if not _is_unspecified(bound):  # 0.0.0.0 in a Host header is a known way into loopback services
        names.append(_host_name(bound))
    problems = []
    for item in environ.get(HOSTS_ENV, "").split(","):
        if not item.strip():
            continue
        name = _host_name(item)
        if not _HOST_PATTERN.fullmatch(name):
            problems.append(
                f"{item.strip()!r} is not a host name; list names such as generator or *.example.internal, "
                "without scheme or port (`*` alone is refused: any web page could then reach the API)"
            )
            continue
        names.append(name)
    if problems:
        raise ConfigError(HOSTS_ENV, problems)
    return list(dict.fromkeys(names))


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def token_file(data: DataRoot) -> Path:
    """Where a generated token is written: `DIR/manifests/.control-token`."""
    return data.manifests / TOKEN_FILE_NAME


@dataclass(frozen=True)
class ControlToken:
    """The bearer token of one server, and the owner-only file holding it (None: from the env)."""

    value: str
    path: Path | None

    def __repr__(self) -> str:  # never print the token
        return f"ControlToken(path={self.path!r})"

    def matches(self, given: str) -> bool:
        """Constant-time comparison of a presented token with this one."""
        return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), self.value.encode("utf-8"))

    def remove_file(self) -> None:
        """Delete the token file (a stale token is useless, but need not linger)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def control_token(data: DataRoot, environ: Mapping[str, str] = os.environ) -> ControlToken:
    """The token from `MEDALLION_CONTROL_TOKEN`, or a new random one in an owner-only file.

    The file is created with mode 0600 and O_EXCL from the start (never widened, never through
    a link); a stale one from an earlier run is replaced.

    Raises:
        ConfigError: the variable is set but too short or holds spaces or non-ASCII characters.
        UnsafePathError: the token file's real path leaves the data root.
        GeneratorError: the token file cannot be written.
    """
    given = environ.get(TOKEN_ENV, "")
    if given:
        if not _TOKEN_SHAPE.fullmatch(given):
            raise ConfigError(
                TOKEN_ENV,
                [
                    "must be at least 16 printable ASCII characters without spaces; set a random one, e.g. "
                    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))', or unset it to have one generated"
                ],
            )
        return ControlToken(given, None)
    path = token_file(data)
    data.resolve_inside(path.parent)
    value = secrets.token_urlsafe(32)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a link is removed, not followed
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
    except OSError as exc:
        raise GeneratorError(f"cannot write the control token file {path}: {exc.strerror}; check --data") from None
    return ControlToken(value, path)


def create_app(runner: Runner, token: ControlToken, hosts: list[str]) -> Any:
    """The FastAPI application controlling one runner.

    Args:
        runner: the run loop the endpoints act on.
        token: what `Authorization: Bearer` must carry for every endpoint but `/api/health`.
        hosts: the `Host` names requests may use.
    """
    def same_origin(request: Request) -> None:
        # Browsers send Origin on cross-site POSTs and fetches; only the API's own pages (/docs) may.
        origin = request.headers.get("origin")
        if origin is None:
            return
        host = request.headers.get("host", "").lower()
        if origin.lower() not in (f"http://{host}", f"https://{host}"):
            raise HTTPException(
                status_code=403,
                detail=f"Origin {origin!r} is not this API's origin: requests from other web pages are refused; "
                "call the API directly (curl, httpx) with the bearer token",
            )

    def json_body_only(request: Request) -> None:
        # A browser's cross-site "simple request" can only send text/plain, form or multipart bodies.
        content_type = request.headers.get("content-type")
        has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
        media = None if content_type is None else content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and (media is not None or has_body):
            raise HTTPException(
                status_code=415,
                detail=f"Content-Type {content_type!r} is refused: send no body, or a JSON one (application/json)",
            )

    def require_token(credentials: BearerCredentials) -> None:
        if credentials is None or not token.matches(credentials.credentials):
            where = f"set in {TOKEN_ENV}" if token.path is None else "in DIR/manifests/.control-token"
            raise HTTPException(
                status_code=401,
                detail=f"missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token {where}",
                headers={"WWW-Authenticate": "Bearer"},
            )

    guarded = [Depends(json_body_only), Depends(require_token)]
    app = FastAPI(
        title="medallion generator",
        version=__version__,
        description="Pause, resume, clean and watch a running `medallion generate`. Every endpoint but "
        "/api/health needs `Authorization: Bearer <token>`.",
        dependencies=[Depends(same_origin)],
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)

    @app.get("/api/health", summary="Status, uptime, cadence and per-entity progress (no token needed)")
    def health() -> dict[str, Any]:
        return runner.health()

    @app.post("/api/pause", summary="Pause after the batch in hand", dependencies=guarded)
    def pause() -> dict[str, Any]:
        return runner.pause()

    @app.post("/api/resume", summary="Resume; regenerates the baseline after a clean", dependencies=guarded)
    def resume() -> dict[str, Any]:
        return runner.resume()

    @app.post(
        "/api/clean",
        summary="Delete the generator's landing files and manifests (only while paused)",
        responses={409: {"description": "the generator is not paused, or a folder leads out of the data root"}},
        dependencies=guarded,
    )
    def clean() -> dict[str, Any]:
        try:
            return runner.clean()
        except (RuntimeError, MedallionError) as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None

    @app.post(
        "/api/anomalies",
        summary="Put a sensor anomaly on the readings of the next batches (recorded in the manifests)",
        responses={422: {"description": "the body is invalid, or names no sensor or unit in service"}},
        dependencies=guarded,
    )
    def anomalies(request: AnomalyRequest) -> dict[str, Any]:
        try:
            return runner.inject_anomaly(request.subtype, request.engine, request.sensor,
                                         request.duration_seconds or 0.0, request.magnitude or 0.0)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None

    @app.get(
        "/api/logs",
        summary="Structured log entries after `since`",
        response_model=LogsResponse,
        dependencies=[Depends(require_token)],
    )
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

    def __init__(self, runner: Runner, address: str, environ: Mapping[str, str] = os.environ) -> None:
        import uvicorn

        self.host, self.port = parse_address(address)
        self.hosts = allowed_hosts(self.host, environ)
        self.token = control_token(runner.data, environ)
        config = uvicorn.Config(
            create_app(runner, self.token, self.hosts), host=self.host, port=self.port, log_level="warning", access_log=False
        )
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
        where = f"from {TOKEN_ENV}" if self.token.path is None else f"in {self.token.path} (readable by its owner only)"
        message = f"control API token {where}; allowed Host names: {', '.join(self.hosts)}"
        self.runner.log.log("info", "serve", message)
        print(message, file=sys.stderr)

    def stop(self) -> None:
        """Stop serving and remove a generated token file."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=10)
        self.token.remove_file()
