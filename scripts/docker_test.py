"""`make docker-test`: build the Docker images and run the whole compose stack for real.

1. Docker: installs the engine and Compose from the OS packages when missing (root, Debian),
   starts `dockerd` when none answers (and stops only that one at the end).
2. Base images: official ones when present locally; otherwise a minimal Debian bookworm made with
   debootstrap from the archive apt uses (cached as a tarball, reused as an image) and a stand-in
   for python:3.11-slim-bookworm built on it. The project's images are built with BuildKit, the
   OS's extra CA certificates passed as the `extra_ca` build secret (never stored in an image).
3. The stack (docker/docker-compose.yml; docker/docker-compose.local-db.yml adds PostgreSQL and
   MariaDB built from Debian packages when postgres:16 / mysql:8.4 are not present): master,
   two workers, generator, continuous pipeline, history server, JupyterLab, both databases.
4. Checks: every healthcheck, the workers ALIVE at the master, the generator's /api/health,
   JupyterLab's HTTP 200 and one notebook executed in its container on the cluster, gold rows in
   the pipeline's metrics, the export into both databases, SIGTERM and clean exits, a catch-up
   pass, the export again, `medallion verify`, and both databases equal to the Delta gold tables
   (scripts/docker_stack_check.py, run inside the stack). Then `down -v`: nothing left running.

Every wait has a deadline; on failure it prints `ps` and each service's last log lines, and it
always tears the stack down. Settings (environment): MEDALLION_DOCKER_CACHE (tarball cache,
default /var/cache/medallion-docker), MEDALLION_EXTRA_CA_FILE (a PEM bundle; default: the
OS's /usr/local/share/ca-certificates/*.crt), MEDALLION_DOCKER_BASE_IMAGE (a Python 3.11
bookworm image to build on instead of the stand-in).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
LOCAL_DB_FILE = DOCKER_DIR / "docker-compose.local-db.yml"
WHEELHOUSE = DOCKER_DIR / "wheelhouse"
PROJECT = "medallion-test"

OFFICIAL_PYTHON = "python:3.11.13-slim-bookworm"
OFFICIAL_DATABASES = ("postgres:16", "mysql:8.4")
DEBIAN_REPO = "medallion/debian"
PYTHON_STANDIN = "medallion/python:3.11-slim-bookworm"
SPARK_IMAGE = "medallion-spark:0.1.0"
GENERATOR_IMAGE = "medallion-generator:0.1.0"
POSTGRES_STANDIN = "medallion/postgres-local:15"
MARIADB_STANDIN = "medallion/mariadb-local:10.11"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

SERVICES = ["spark-master", "spark-worker", "generator", "pipeline", "spark-history", "retention", "jupyter",
            "postgres", "mysql"]
WORKERS = 2
SCENARIO = "driving"
NOTEBOOK = "01_quickstart.ipynb"
# The test's generator: the `small` profile (5 companies of 5 drivers, about 100 events a batch
# instead of 3,500) and one 15-minute batch every 20 s instead of 10 s. Every check stays; the
# 2 cores then spend the run on Spark's work per micro-batch rather than on the rows.
GENERATOR_SETTINGS = {"MEDALLION_GENERATOR_PROFILE": "small", "MEDALLION_GENERATOR_SPEED": "45"}
# A JVM stopped by SIGTERM exits 143 (128 + 15) after its shutdown hooks: a clean stop.
# 137 would be SIGKILL, after the grace period ran out.
CLEAN_EXITS = {0, 143}

T = TypeVar("T")


class StackError(RuntimeError):
    """A step of the run failed: the message says which and why."""


def log(message: str) -> None:
    print(f"[docker-test] {message}", flush=True)


STEP_TIMES: list[tuple[str, float]] = []
# What the run checked and found, printed again at the end.
CHECKED: list[str] = []


@contextmanager
def step(name: str) -> Iterator[None]:
    log(f"--- {name}")
    started = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - started
        STEP_TIMES.append((name, seconds))
        log(f"--- {name}: {seconds:.0f} s")


def run(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None, capture: bool = False,
        check: bool = True, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    """One command with a deadline; its output streams through unless captured."""
    try:
        result = subprocess.run(list(command), timeout=timeout, env=env, text=True, stdin=stdin,
                                stdout=subprocess.PIPE if capture else None,
                                stderr=subprocess.STDOUT if capture else None, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"timed out after {timeout:.0f} s: {' '.join(command)}") from exc
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout or "").splitlines()[-40:])
        raise StackError(f"exit {result.returncode}: {' '.join(command)}\n{tail}")
    return result


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 5.0) -> T:
    """`probe()` until it returns something other than None (or False), at most `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str] | None:
    """(status, body) or None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, ValueError):
        return None


# --- the engine ----------------------------------------------------------------------------


def apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(f"missing {packages}: install them (Debian: apt-get install -y {' '.join(packages)})")
    log(f"installing {' '.join(packages)} from the OS packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], timeout=300, env=env, capture=True)
    run(["apt-get", "install", "-y", "-q", *packages], timeout=900, env=env, capture=True)


def compose_works(command: list[str]) -> bool:
    if not shutil.which(command[0]):
        return False
    return subprocess.run([*command, "version"], capture_output=True, timeout=60, check=False).returncode == 0


def ensure_tools() -> list[str]:
    """The engine, a Compose and debootstrap installed; returns the Compose command."""
    missing = [package for tool, package in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"))
               if not shutil.which(tool)]
    if not compose_works(["docker", "compose"]) and not compose_works(["docker-compose"]):
        missing.append("docker-compose")
    if missing:
        apt_install(missing)
    if compose_works(["docker", "compose"]):
        return ["docker", "compose"]
    if compose_works(["docker-compose"]):
        return ["docker-compose"]
    raise StackError("neither `docker compose` nor `docker-compose` runs")


def daemon_answers(docker: str = "docker") -> bool:
    return subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode == 0


class Daemon:
    """dockerd: the one running, or one started here (and stopped by `stop`)."""

    def __init__(self, log_file: Path) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = log_file

    def ensure(self) -> None:
        if daemon_answers():
            log("dockerd already running: using it (left running at the end)")
            return
        dockerd = shutil.which("dockerd")
        assert dockerd
        log(f"starting dockerd (log: {self.log_file})")
        with self.log_file.open("ab") as out:
            # Its own session: Ctrl-C on make reaches this script, which stops it in order.
            self.process = subprocess.Popen([dockerd], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        process = self.process

        def up() -> bool | None:
            if process.poll() is not None:
                raise StackError(f"dockerd exited {process.returncode}; see {self.log_file}")
            return daemon_answers() or None

        wait_for("dockerd to answer", up, timeout=90, interval=1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        log(f"stopping the dockerd this run started (pid {self.process.pid})")
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


# --- images --------------------------------------------------------------------------------


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True, timeout=30,
                          check=False).returncode == 0


def image_size_mb(name: str) -> float:
    out = run(["docker", "image", "inspect", "-f", "{{.Size}}", name], timeout=30, capture=True).stdout
    return int(out.strip()) / 1e6


def buildkit_command() -> tuple[list[str], dict[str, str]]:
    """A `build` that takes --secret: buildx if installed, else a client with BuildKit built in
    (Debian's 20.10 `docker`; newer clients need the buildx plugin for BuildKit)."""
    clients = [c for c in dict.fromkeys([shutil.which("docker"), "/usr/bin/docker"]) if c and Path(c).exists()]
    for client in clients:
        if subprocess.run([client, "buildx", "version"], capture_output=True, timeout=30, check=False).returncode == 0:
            return [client, "buildx", "build", "--load"], dict(os.environ)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    for client in clients:
        probe = subprocess.run([client, "build", "--help"], capture_output=True, text=True, timeout=30,
                               env=env, check=False)
        if probe.returncode == 0 and "--secret" in probe.stdout:
            return [client, "build"], env
    raise StackError("no Docker client builds with BuildKit here (install the buildx plugin)")


def extra_ca_bundle(workdir: Path) -> Path | None:
    """The extra CA certificates a build should trust, as one PEM file outside the checkout."""
    configured = os.environ.get("MEDALLION_EXTRA_CA_FILE")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise StackError(f"MEDALLION_EXTRA_CA_FILE={configured} is not a file; point it to a PEM bundle")
        return path
    certificates = sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt"))
    if not certificates:
        return None
    bundle = workdir / "extra-ca.pem"
    bundle.write_text("".join(c.read_text(encoding="utf-8").rstrip() + "\n" for c in certificates), encoding="utf-8")
    return bundle


# What the official slim images leave out, for every later `apt-get install` too (copyright
# files stay): costs nothing at run time, saves tens of MB in each image.
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""


def slim_rootfs(rootfs: Path) -> None:
    """A debootstrapped tree without its downloaded packages, apt lists, docs, man pages and
    translations, and dpkg told to leave them out of later installs."""
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/medallion-slim").write_text(DPKG_EXCLUDES, encoding="utf-8")
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"):
        for leftover in rootfs.glob(pattern):
            leftover.unlink()
    for folder in ("usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/doc"):
        for entry in sorted((rootfs / folder).glob("*")):
            if entry.is_dir() and not entry.is_symlink():
                for inner in entry.rglob("*"):
                    if (inner.is_file() or inner.is_symlink()) and inner.name != "copyright":
                        inner.unlink()
            elif entry.name != "locale.alias":
                entry.unlink()


def host_wheels() -> list[Path]:
    """Pure-Python wheels pip on this machine built from sdists (its cache's wheels/: pyspark's,
    430 MB, once `make test` has installed the project). Pure ones only: a compiled wheel built
    here could need a newer C library than the image's."""
    roots = [Path(os.environ["PIP_CACHE_DIR"])] if os.environ.get("PIP_CACHE_DIR") else []
    roots.append(Path.home() / ".cache" / "pip")
    found: dict[str, Path] = {}
    for root in roots:
        for wheel in sorted((root / "wheels").glob("**/*-none-any.whl")):
            found.setdefault(wheel.name, wheel)
    return list(found.values())


@contextmanager
def staged_wheels() -> Iterator[list[str]]:
    """The host's wheels in docker/wheelhouse/ (hard links when possible) during the builds, then
    removed: the Spark image's dependency step bind-mounts that folder as pip's --find-links."""
    staged: list[Path] = []
    try:
        for wheel in host_wheels():
            target = WHEELHOUSE / wheel.name
            if target.exists():
                continue
            try:
                os.link(wheel, target)
            except OSError:
                shutil.copyfile(wheel, target)
            staged.append(target)
        yield [w.name for w in staged]
    finally:
        for target in staged:
            target.unlink(missing_ok=True)


def debian_image(cache: Path) -> str:
    """The newest local medallion/debian:bookworm-YYYYMMDD, else imported from the cached
    tarball, else made with debootstrap (minbase) from the Debian archive."""
    tags = run(["docker", "image", "ls", DEBIAN_REPO, "--format", "{{.Tag}}"], timeout=30, capture=True).stdout.split()
    dated = sorted(t for t in tags if re.fullmatch(r"bookworm-\d{8}", t))
    if dated:
        log(f"base: {DEBIAN_REPO}:{dated[-1]} (present)")
        return f"{DEBIAN_REPO}:{dated[-1]}"
    cache.mkdir(parents=True, exist_ok=True)
    tarballs = sorted(cache.glob("debian-bookworm-minbase-*.tar"))
    if tarballs:
        tarball = tarballs[-1]
        log(f"base: importing {tarball}")
    else:
        day = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        tarball = cache / f"debian-bookworm-minbase-{day}.tar"
        rootfs = cache / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"base: debootstrap --variant=minbase bookworm from {DEBIAN_MIRROR}")
        started = time.monotonic()
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR], timeout=900, capture=True)
        # The security and point-release updates too, as the official images have them.
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {DEBIAN_MIRROR} bookworm main\n"
            f"deb {DEBIAN_MIRROR} bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n", encoding="utf-8")
        slim_rootfs(rootfs)
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], timeout=300)
        partial.rename(tarball)
        shutil.rmtree(rootfs)
        log(f"base: debootstrap, slimming and tar in {time.monotonic() - started:.0f} s")
    day = tarball.stem.rsplit("-", 1)[1]
    name = f"{DEBIAN_REPO}:bookworm-{day}"
    started = time.monotonic()
    run(["docker", "import", str(tarball), name], timeout=300, capture=True)
    log(f"base: imported {name} in {time.monotonic() - started:.0f} s ({image_size_mb(name):.0f} MB)")
    return name


def build(builder: tuple[list[str], dict[str, str]], dockerfile: str, tag: str, args: dict[str, str],
          ca: Path | None, context: Path = ROOT) -> None:
    command, env = builder
    cmd = [*command, "--progress=plain", "-f", str(ROOT / dockerfile), "-t", tag]
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if ca is not None:
        cmd += ["--secret", f"id=extra_ca,src={ca}"]
    started = time.monotonic()
    result = run([*cmd, str(context)], timeout=1500, env=env, capture=True, check=False)
    if result.returncode != 0:
        raise StackError(f"building {tag} failed:\n" + "\n".join(result.stdout.splitlines()[-60:]))
    log(f"built {tag} in {time.monotonic() - started:.0f} s ({image_size_mb(tag):.0f} MB)")


def make_images(cache: Path, ca: Path | None) -> bool:
    """Every image the stack needs; returns whether the database stand-ins are used."""
    builder = buildkit_command()
    base = os.environ.get("MEDALLION_DOCKER_BASE_IMAGE") or (OFFICIAL_PYTHON if image_exists(OFFICIAL_PYTHON) else "")
    debian = ""
    local_db = not all(image_exists(image) for image in OFFICIAL_DATABASES)
    if not base or local_db:
        debian = debian_image(cache)
    # Three lanes: the Python stand-in then the Spark image (minutes of pip: the long one), the
    # database stand-ins beside them (they need only Debian), then the generator.
    def python_base() -> str:
        if base:
            return base
        if image_exists(PYTHON_STANDIN):
            log(f"base: {PYTHON_STANDIN} (present)")
        else:
            build(builder, "docker/base/python.Dockerfile", PYTHON_STANDIN, {"DEBIAN_IMAGE": debian}, None,
                  context=DOCKER_DIR / "base")
        return PYTHON_STANDIN

    with staged_wheels() as wheels, ThreadPoolExecutor(max_workers=3) as pool:
        log(f"host wheels for pip: {', '.join(wheels) or 'none'}")
        python = pool.submit(python_base)

        def spark() -> None:
            build(builder, "docker/Dockerfile", SPARK_IMAGE, {"BASE_IMAGE": python.result()}, ca)

        def the_others() -> None:
            if local_db:
                log(f"{' and '.join(OFFICIAL_DATABASES)} not present locally: PostgreSQL and MariaDB from Debian packages")
                build(builder, "docker/local-db/postgres.Dockerfile", POSTGRES_STANDIN, {"DEBIAN_IMAGE": debian}, None)
                build(builder, "docker/local-db/mariadb.Dockerfile", MARIADB_STANDIN, {"DEBIAN_IMAGE": debian}, None)
            build(builder, "docker/generator.Dockerfile", GENERATOR_IMAGE, {"BASE_IMAGE": python.result()}, ca)

        for finished in [pool.submit(spark), pool.submit(the_others)]:
            finished.result()
        python_image = python.result()
    for image in (python_image, GENERATOR_IMAGE, SPARK_IMAGE,
                  *((POSTGRES_STANDIN, MARIADB_STANDIN) if local_db else OFFICIAL_DATABASES)):
        log(f"image {image}: {image_size_mb(image):.0f} MB")
    return local_db


# --- the stack -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """The compose project `medallion-test`: commands, container state, host ports."""

    def __init__(self, compose: list[str], local_db: bool) -> None:
        files = ["-f", str(COMPOSE_FILE)] + (["-f", str(LOCAL_DB_FILE)] if local_db else [])
        self.base = [*compose, *files, "-p", PROJECT]
        ports = ["SPARK_UI", "GENERATOR", "JUPYTER", "POSTGRES", "MYSQL", "HISTORY_UI", "METRICS", "DRIVER_UI"]
        # Secrets made for this run only; free host ports so nothing else on the machine clashes.
        self.env = {
            **os.environ,
            "MEDALLION_POSTGRES_PASSWORD": secrets.token_urlsafe(18),
            "MEDALLION_MYSQL_PASSWORD": secrets.token_urlsafe(18),
            "JUPYTER_TOKEN": secrets.token_urlsafe(18),
            "MEDALLION_CONTROL_TOKEN": secrets.token_urlsafe(24),
            **{f"MEDALLION_{name}_PORT": str(free_port()) for name in ports},
            **GENERATOR_SETTINGS,
        }

    def port(self, name: str) -> int:
        return int(self.env[f"MEDALLION_{name}_PORT"])

    def compose(self, *args: str, timeout: float, capture: bool = False,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.base, *args], timeout=timeout, env=self.env, capture=capture, check=check)

    def containers(self, service: str | None = None) -> list[str]:
        ids = self.compose("ps", "-q", *([service] if service else []), timeout=60, capture=True).stdout.split()
        return [i for i in ids if re.fullmatch(r"[0-9a-f]{12,64}", i)]

    def inspect(self, container: str) -> dict[str, Any]:
        out = run(["docker", "inspect", container], timeout=30, capture=True).stdout
        return dict(json.loads(out)[0])

    def states(self) -> dict[str, dict[str, Any]]:
        """Container name -> its State (running, exit code, health)."""
        return {str(info["Name"]).lstrip("/"): dict(info["State"])
                for info in (self.inspect(c) for c in self.containers())}

    def exited_all(self) -> list[str]:
        return [c for c in run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                               timeout=30, capture=True).stdout.split()]

    def dump(self) -> None:
        """What a failed run needs to be understood: ps, then each service's last log lines."""
        with suppress(Exception):
            self.compose("ps", timeout=60, check=False)
        for service in [*SERVICES, "export"]:
            with suppress(Exception):
                log(f"last logs of {service}:")
                self.compose("logs", "--no-color", "--tail", "40", service, timeout=60, check=False)

    def down(self) -> None:
        with suppress(Exception):
            self.compose("down", "-v", "--remove-orphans", "-t", "30", timeout=300, check=False)
        left = self.exited_all()
        if left:
            log(f"removing {len(left)} leftover containers")
            run(["docker", "rm", "-f", *left], timeout=120, check=False)


def health_report(stack: Stack) -> dict[str, str]:
    """container -> 'healthy' / 'running' (no healthcheck) / another state."""
    report = {}
    for name, state in stack.states().items():
        if state.get("Health"):
            report[name] = str(state["Health"]["Status"])
        else:
            report[name] = "running" if state.get("Running") else f"exited {state.get('ExitCode')}"
    return report


def wait_healthy(stack: Stack, timeout: float) -> dict[str, str]:
    expected = len(SERVICES) - 1 + WORKERS

    def probe() -> dict[str, str] | None:
        report = health_report(stack)
        bad = {n: s for n, s in report.items() if s not in ("healthy", "running")}
        failed = {n: s for n, s in bad.items() if s == "unhealthy" or s.startswith("exited")}
        # The history server restarts until the pipeline made the event-log folder.
        failed = {n: s for n, s in failed.items() if "spark-history" not in n}
        if failed:
            raise StackError(f"services failed: {failed}")
        return report if len(report) == expected and not bad else None

    return wait_for("every service running and healthy", probe, timeout=timeout)


def gold_reached(stack: Stack) -> str | None:
    """What the pipeline's Prometheus series say of gold so far, once it has been written: rows
    of gold queries, or the landing-to-gold lag of silver micro-batches that updated gold
    themselves (gold fed by silver has no query of its own)."""
    answer = http_get(f"http://127.0.0.1:{stack.port('METRICS')}/metrics")
    if not answer or answer[0] != 200:
        return None
    found = []
    for line in answer[1].splitlines():
        rows = re.match(r'medallion_rows_total\{([^}]*layer="gold"[^}]*)\}\s+([0-9.e+]+)', line)
        lag = re.match(r'medallion_landing_to_gold_lag_seconds\{([^}]*)\}\s+([0-9.e+]+)', line)
        if rows and float(rows[2]) > 0:
            found.append(f"gold rows {{{rows[1]}}} {int(float(rows[2]))}")
        if lag:
            found.append(f"gold updated by silver {{{lag[1]}}}, landing-to-gold lag {float(lag[2]):.0f} s")
    return "; ".join(found) or None


def stop_services(stack: Stack, services: list[str], grace: int) -> dict[str, int]:
    """SIGTERM (`compose stop`), then each container's exit code, all clean or an error."""
    stack.compose("stop", "-t", str(grace), *services, timeout=grace + 120)
    codes = {}
    for service in services:
        for container in stack.containers(service):
            info = stack.inspect(container)
            codes[str(info["Name"]).lstrip("/")] = int(info["State"]["ExitCode"])
    unclean = {n: c for n, c in codes.items() if c not in CLEAN_EXITS}
    if unclean:
        raise StackError(f"unclean exits after SIGTERM: {unclean} (clean: {sorted(CLEAN_EXITS)})")
    return codes


def run_stack(compose: list[str], local_db: bool, workdir: Path) -> None:
    stack = Stack(compose, local_db)
    try:
        with step("compose config"):
            stack.compose("config", "-q", timeout=60)
        with step("compose up"):
            stack.compose("up", "-d", "--no-build", "--scale", f"spark-worker={WORKERS}", *SERVICES, timeout=600)
        with step("services healthy"):
            report = wait_healthy(stack, timeout=420)
            for name, status in sorted(report.items()):
                log(f"  {name}: {status}")
            CHECKED.append(f"{len(report)} containers running, every healthcheck healthy")
        with step("cluster, generator, JupyterLab over HTTP"):
            master = http_get(f"http://127.0.0.1:{stack.port('SPARK_UI')}/json/")
            assert master is not None and master[0] == 200, "Spark master UI"
            alive = [w["id"] for w in json.loads(master[1])["workers"] if w["state"] == "ALIVE"]
            log(f"workers alive at the master: {len(alive)} ({', '.join(alive)})")
            if len(alive) != WORKERS:
                raise StackError(f"{len(alive)} workers alive, expected {WORKERS}")
            CHECKED.append(f"{len(alive)} workers ALIVE at the master")
            health = http_get(f"http://127.0.0.1:{stack.port('GENERATOR')}/api/health")
            log(f"generator /api/health: {health}")
            if not health or health[0] != 200:
                raise StackError(f"generator health: {health}")
            lab = http_get(f"http://127.0.0.1:{stack.port('JUPYTER')}/lab?token={stack.env['JUPYTER_TOKEN']}")
            log(f"JupyterLab /lab: HTTP {lab[0] if lab else None}")
            if not lab or lab[0] != 200:
                raise StackError(f"JupyterLab answered {lab}")
            CHECKED.append("generator /api/health 200, JupyterLab /lab 200")
        # The notebook runs on the cluster beside the pipeline (each application gets 2 cores).
        notebook_log = workdir / "notebook.log"
        with notebook_log.open("w") as out:
            notebook = subprocess.Popen(
                [*stack.base, "exec", "-T", "jupyter", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                 "--ExecutePreprocessor.timeout=600", "--output-dir", "/tmp", f"notebooks/{NOTEBOOK}"],
                env=stack.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        notebook_started = time.monotonic()
        with step("gold rows from the continuous pipeline"):
            reached = wait_for("gold in the pipeline's metrics", lambda: gold_reached(stack), timeout=600)
            log(f"the continuous pipeline reached gold: {reached}")
            CHECKED.append(f"continuous pipeline reached gold: {reached}")
        with step("export while the pipeline runs"):
            stack.compose("run", "--rm", "export", timeout=600)
        with step(f"notebook {NOTEBOOK} in the jupyter container, on the cluster"):
            try:
                code = notebook.wait(timeout=max(60.0, 900 - (time.monotonic() - notebook_started)))
            except subprocess.TimeoutExpired:
                notebook.kill()
                code = -1
            print(notebook_log.read_text(encoding="utf-8", errors="replace")[-2000:])
            if code != 0:
                raise StackError(f"the notebook failed (exit {code})")
            apps = http_get(f"http://127.0.0.1:{stack.port('SPARK_UI')}/json/")
            names = [a["name"] for a in json.loads(apps[1])["completedapps"]] if apps else []
            if not any(n.startswith("medallion-notebook") for n in names):
                raise StackError(f"the notebook's Spark application is not at the master: {names}")
            log("the notebook's application ran on the cluster")
            CHECKED.append(f"{NOTEBOOK} executed in the jupyter container, its application on the cluster")
        with step("every service healthy before the stop"):
            for name, status in sorted(wait_healthy(stack, timeout=120).items()):
                log(f"  {name}: {status}")
        with step("SIGTERM: generator, then pipeline"):
            codes = stop_services(stack, ["generator"], grace=30)
            codes |= stop_services(stack, ["pipeline"], grace=120)
            log(f"exit codes: {codes}")
            CHECKED.append(f"SIGTERM exits: {codes}")
        with step("catch-up pass, export, verify, databases = Delta gold"):
            cluster = ["--master", "spark://spark-master:7077"]
            stack.compose("run", "--rm", "export", "medallion", "pipeline", "--scenario", SCENARIO, "--data", "/data",
                          "--once", *cluster, timeout=900)
            stack.compose("run", "--rm", "export", timeout=600)
            # `medallion verify` and the row-for-row comparison in one Spark application.
            check = ROOT / "scripts" / "docker_stack_check.py"
            result = stack.compose("run", "--rm", "-T", "-v", f"{check}:/tmp/docker_stack_check.py:ro", "export",
                                   "python3", "/tmp/docker_stack_check.py", "--scenario", SCENARIO, "--data", "/data",
                                   *cluster, timeout=600, capture=True, check=False)
            print(result.stdout, end="", flush=True)
            if result.returncode != 0:
                raise StackError(f"verify or the databases-vs-Delta comparison failed (exit {result.returncode})")
            for line in result.stdout.splitlines():
                if re.match(r"(postgres|mysql)\.\w+: \d+ rows|all \d+ checks hold", line):
                    CHECKED.append(line.strip())
        with step("retention: one pass with age 0 on the stopped pipeline's data"):
            # Its own local Spark, as the retention service runs it.
            retained = stack.compose("run", "--rm", "-T", "export", "medallion", "retention", "--scenario",
                                     SCENARIO, "--data", "/data", "--older-than", "0", "--master", "local[1]",
                                     timeout=600, capture=True).stdout
            match = re.search(r"\[retention\] (\d+) landing files deleted, (\d+) Delta tables vacuumed, "
                              r"(\d+) data files deleted", retained)
            if not match or min(int(n) for n in match.groups()) == 0:
                raise StackError(f"retention deleted nothing:\n{retained[-2000:]}")
            log(match[0])
            CHECKED.append(match[0])
        with step("SIGTERM: every other service"):
            rest = ["retention", "jupyter", "spark-history", "spark-worker", "spark-master", "postgres", "mysql"]
            codes = stop_services(stack, rest, grace=120)
            for name, code in sorted(codes.items()):
                log(f"  {name}: exit {code}")
            CHECKED.append(f"SIGTERM exits of the other {len(codes)} containers: {sorted(set(codes.values()))}")
    except BaseException:
        log("FAILED: the stack as it stands, then the last logs of each service")
        stack.dump()
        raise
    finally:
        with step("compose down -v"):
            stack.down()
            left = stack.exited_all()
            if left:
                raise StackError(f"containers left after down: {left}")
            log("no container of the test project is left")
            CHECKED.append("compose down -v: no container left")


@contextmanager
def machine_lock() -> Iterator[None]:
    """MEDALLION_DOCKER_TEST_LOCK=PATH: hold an exclusive flock on PATH while the stack runs, so
    other heavy runs on a shared machine that take the same lock wait (unset: no lock)."""
    path = os.environ.get("MEDALLION_DOCKER_TEST_LOCK")
    if not path:
        yield
        return
    with open(path, "a") as handle:
        with step(f"waiting for the lock {path}"):
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def main() -> int:
    started = time.monotonic()
    cache = Path(os.environ.get("MEDALLION_DOCKER_CACHE", "/var/cache/medallion-docker"))
    workdir = Path(tempfile.mkdtemp(prefix="medallion-docker-test-"))
    daemon = Daemon(workdir / "dockerd.log")
    status = 1
    try:
        with step("engine and compose"):
            compose = ensure_tools()
            daemon.ensure()
            log(f"compose: {' '.join(compose)}")
        with step("images"):
            local_db = make_images(cache, extra_ca_bundle(workdir))
        with machine_lock():
            run_stack(compose, local_db, workdir)
        status = 0
    except StackError as exc:
        log(f"FAILED: {exc}")
    finally:
        daemon.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for fact in CHECKED:
            log(f"checked: {fact}")
        log("step times: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in STEP_TIMES))
        log(f"{'passed' if status == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
