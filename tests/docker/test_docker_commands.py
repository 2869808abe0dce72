"""Commands of docker/docker-compose.yml and the Dockerfiles, run here without Docker (docs/design.md §2.8).

`make docker-test` (scripts/docker_test.py, run by CI after `make test`) builds the images and runs
the whole stack for real: the generator, the continuous pipeline on the cluster, the export, the
notebook, verify and the databases against Delta. What this module keeps runs where Docker does
not, so `make test` alone still covers it:

- `generator`: in a fresh virtualenv built like docker/generator.Dockerfile (its requirements,
  the sources it copies, `pip install --no-deps -e .`), so no pyspark and no JVM;
- `export`: the one-shot export on a local standalone cluster with the compose file's worker
  count, cores, memory and `SPARK_MASTER_OPTS`, twice, with the compose file's environment, into
  throwaway PostgreSQL and MariaDB servers (the second run changes nothing);
- docker/Dockerfile's build-time `medallion setup; medallion jars` against a local Maven mirror,
  including its failure when a jar cannot be fetched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyspark.sql import SparkSession

from medallion.contracts.layout import DataRoot
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import Connection, count_rows, run_sql
from medallion.local.cluster import StandaloneCluster
from medallion.local.ports import free_port
from spark_jobs.config import PipelineConfig
from spark_jobs.jars import ARTIFACTS, jar_paths
from spark_jobs.lifecycle import GracefulStop
from spark_jobs.pipeline import run as run_pipeline
from tests.support.compose import (
    DOCKER,
    DOCKERFILE,
    GENERATOR_DOCKERFILE,
    GENERATOR_REQUIREMENTS,
    ROOT,
    command_of,
    copied_sources,
    environment_of,
    load_compose,
    localise,
    run_commands,
)

pytestmark = [pytest.mark.integration]

BIN = Path(sys.executable).parent
PLACEHOLDERS = {"MEDALLION_POSTGRES_PASSWORD": "unused", "MEDALLION_MYSQL_PASSWORD": "unused", "JUPYTER_TOKEN": "unused",
                "MEDALLION_CONTROL_TOKEN": "unused-control-token-0123456789"}
CONTROL_TOKEN = PLACEHOLDERS["MEDALLION_CONTROL_TOKEN"]
T = TypeVar("T")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without anything that would leak the dev venv into a child."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra or {})
    return env


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, alive: list[subprocess.Popen[bytes]] | None = None,
             logs: list[Path] | None = None) -> T:
    """Poll `probe` until it returns something truthy; fail if a watched process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        dead = [p for p in alive or [] if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs or [] if log.exists())
            reason = f"process {dead[0].args} exited with {dead[0].returncode}" if dead else f"not within {timeout:.0f}s"
            pytest.fail(f"waiting for {what}: {reason}\n{tails}")
        time.sleep(1.0)


def start(command: list[str], log: Path, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a service command in its own session (so its JVM children can be reaped with it)."""
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd, start_new_session=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 180.0) -> int:
    """SIGTERM, as `docker compose stop` sends; SIGKILL the whole session if it does not exit."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return -9
    return process.returncode


def http_json(url: str, method: str = "GET", token: str | None = None) -> Any:
    """A JSON answer from the generator's control API, or None while it is not up."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return json.load(response)
    except OSError:
        return None


def delta_rows(table: Path) -> int:
    """Rows of a Delta table, from its transaction log alone (numRecords of live files), no JVM."""
    log = table / "_delta_log"
    if not log.is_dir():
        return 0
    live: dict[str, int] = {}
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "add" in action:
                add = action["add"]
                stats = json.loads(add.get("stats") or "{}")
                deleted = (add.get("deletionVector") or {}).get("cardinality", 0)
                live[add["path"]] = int(stats["numRecords"]) - int(deleted)
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    return sum(live.values())


def service_command(service: Mapping[str, Any], replacements: Mapping[str, str], bin_dir: Path) -> list[str]:
    """The service's command with local paths/ports, its executable taken from `bin_dir`."""
    command = [localise(arg, replacements) for arg in command_of(service)]
    return [str(bin_dir / command[0]), *command[1:]]


@pytest.fixture(scope="module")
def generator_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docker/generator.Dockerfile without Docker: a fresh venv, the file's requirements, the
    sources it copies and `pip install --no-deps -e .`. Returns the venv's bin directory."""
    root = tmp_path_factory.mktemp("generator-image")
    workdir = root / "opt" / "medallion"
    workdir.mkdir(parents=True)
    for source in copied_sources(GENERATOR_DOCKERFILE):
        origin = ROOT / source
        if source.startswith("docker/"):
            continue  # the requirements file, installed from its place below
        if origin.is_dir():
            shutil.copytree(origin, workdir / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, workdir / source)
    venv = root / "venv"
    env = clean_env({"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(GENERATOR_REQUIREMENTS)], check=True, env=env, timeout=600)
    subprocess.run([*pip, "--no-deps", "-e", "."], check=True, env=env, cwd=workdir, timeout=600)
    return venv / "bin"


def test_generator_service_runs_without_pyspark(generator_image: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [str(generator_image / "python"), "-c",
         "import importlib.util, generators, medallion; print(generators.__file__); "
         "print(importlib.util.find_spec('pyspark') is None, importlib.util.find_spec('spark_jobs') is None)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=clean_env(),
    )
    location, absent = probe.stdout.splitlines()
    assert "generator-image" in location and str(ROOT) not in location
    assert absent == "True True", "the slim image has neither pyspark nor spark_jobs"

    service = load_compose(PLACEHOLDERS)["services"]["generator"]
    data, port = tmp_path / "data", free_port()
    command = service_command(service, {"/data": str(data), "0.0.0.0:8000": f"127.0.0.1:{port}"}, generator_image)
    log = tmp_path / "generator.log"
    process = start(command, log, clean_env(environment_of(service)), tmp_path)
    try:
        health = wait_for(
            "two generator batches",
            lambda: (h := http_json(f"http://127.0.0.1:{port}/api/health"))
            and h["entities"].get("driver_events", {}).get("batches", 0) >= 2 and h,
            timeout=90, alive=[process], logs=[log],
        )
        assert (health["status"], health["scenario"], health["seed"]) == ("running", "driving", 42)
        assert health["cadence"]["real_seconds_per_batch"] == pytest.approx(10.0)
        paused = http_json(f"http://127.0.0.1:{port}/api/pause", method="POST", token=CONTROL_TOKEN)
        assert paused is not None
    finally:
        code = stop(process)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "stopped by signal" in output
    assert (data / "landing" / "driver_events" / "driver_events-b000001-p00.jsonl").is_file()
    manifest = json.loads((data / "manifests" / "driver_events" / "b000001.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 42 and manifest["lines"] > 0


def _maven_mirror(root: Path, leave_out: str | None = None) -> Path:
    """A file:// Maven repository holding the pinned jars from .jars/ (Maven Central's layout)."""
    local = {path.name: path for path in jar_paths()}
    for artifact in ARTIFACTS:
        if artifact.name == leave_out:
            continue
        url_path = artifact.url(str(root)).removeprefix(str(root)).lstrip("/")
        target = root / url_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local[artifact.file_name], target)
    return root


def _setup_line() -> str:
    """The image's jar-fetching RUN line, its CA wrapper the real script (no secret given here)."""
    line = next(run for run in run_commands(DOCKERFILE) if "medallion setup" in run)
    return line.replace("with-extra-ca ", f"sh {DOCKER / 'base' / 'with-extra-ca.sh'} ", 1)


def test_spark_image_fetches_the_jars_at_build_time(tmp_path: Path) -> None:
    mirror = _maven_mirror(tmp_path / "maven")
    jars = tmp_path / "opt-medallion-jars"
    env = clean_env({"MEDALLION_JARS_DIR": str(jars), "MEDALLION_MAVEN_REPO": mirror.as_uri(),
                     "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    result = subprocess.run(["sh", "-c", _setup_line()], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for artifact in ARTIFACTS:
        assert f"fetching {artifact.coordinate}" in result.stdout
        assert hashlib.sha1((jars / artifact.file_name).read_bytes()).hexdigest() == artifact.sha1
        # Readable by every user: the images' drivers run as `medallion` and serve them to executors.
        assert (jars / artifact.file_name).stat().st_mode & 0o777 == 0o644
    # The same line fails the build when a jar cannot be fetched.
    broken = _maven_mirror(tmp_path / "broken", leave_out="delta-storage")
    env.update(MEDALLION_JARS_DIR=str(tmp_path / "other-jars"), MEDALLION_MAVEN_REPO=broken.as_uri())
    failed = subprocess.run(["sh", "-c", _setup_line()], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert failed.returncode != 0
    assert "delta-storage" in failed.stdout + failed.stderr


def _flags(args: list[str]) -> dict[str, str]:
    return {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}


@pytest.fixture(scope="module")
def compose_cluster() -> Iterator[tuple[StandaloneCluster, dict[str, str]]]:
    """The compose file's master and workers (count, cores, memory, SPARK_MASTER_OPTS), locally.

    Returns the cluster and the master's `-D` options (e.g. spark.deploy.defaultCores).
    """
    services = load_compose(PLACEHOLDERS)["services"]
    master_opts = environment_of(services["spark-master"])["SPARK_MASTER_OPTS"]
    worker = services["spark-worker"]
    flags = _flags(command_of(worker)[3:])
    options = dict(item.removeprefix("-D").split("=", 1) for item in master_opts.split())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_MASTER_OPTS", master_opts)  # StandaloneCluster hands os.environ to spark-class
        patch.setenv("PYSPARK_PYTHON", sys.executable)  # as the image's ENV: one interpreter everywhere
        with StandaloneCluster(workers=int(worker["deploy"]["replicas"]), cores_per_worker=int(flags["--cores"]),
                               memory_per_worker=flags["--memory"]) as cluster:
            yield cluster, options


def run_command(command: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 900) -> str:
    """Run a one-shot service command; fail with its output on a non-zero exit."""
    result = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command[:3]} exited {result.returncode}:\n{output[-4000:]}"
    return output


@pytest.mark.slow
@pytest.mark.spark
def test_export_service_on_the_compose_cluster(
    spark: SparkSession,
    compose_cluster: tuple[StandaloneCluster, dict[str, str]],
    export_connections: dict[str, Connection],
    tmp_path: Path,
) -> None:
    cluster, _ = compose_cluster
    pg, my = export_connections["postgres"], export_connections["mysql"]
    secrets = {"MEDALLION_POSTGRES_PASSWORD": pg.reveal_password(), "MEDALLION_MYSQL_PASSWORD": my.reveal_password(),
               "JUPYTER_TOKEN": "unused", "MEDALLION_CONTROL_TOKEN": CONTROL_TOKEN}
    services = load_compose(secrets)["services"]
    data = tmp_path / "data"
    local = {"/data": str(data), "spark://spark-master:7077": cluster.url,
             "postgres:5432": f"{pg.host}:{pg.port}", "mysql:3306": f"{my.host}:{my.port}"}
    # Gold to export: the generator's first batch through the pipeline, here in the test's own
    # session (the pipeline service's command itself runs on the cluster in the test above).
    run_command([str(BIN / "medallion"), "generate", "--scenario", "driving", "--seed", "42",
                 "--data", str(data), "--batches", "1", "--quiet"], clean_env(), tmp_path)
    run_pipeline(spark, PipelineConfig(scenario=load_scenario("driving"), data=DataRoot(data)), GracefulStop())

    export_env = clean_env({k: localise(v, local) for k, v in environment_of(services["export"]).items()})
    assert export_env["MEDALLION_POSTGRES_USER"] == pg.user and export_env["MEDALLION_MYSQL_USER"] == my.user
    export = service_command(services["export"], local, BIN)
    first = run_command(export, export_env, tmp_path)
    assert pg.reveal_password() not in first and my.reveal_password() not in first
    assert f"[export] postgres: {pg}" in first and f"[export] mysql: {my}" in first
    table = load_scenario("driving").export_tables[0]
    counts = {kind: count_rows(connection, table) for kind, connection in export_connections.items()}
    assert counts["postgres"] == counts["mysql"] == delta_rows(data / "lake" / "gold" / table) > 0
    # A one-shot service may be run again at any time: the second run changes nothing.
    second = run_command(export, export_env, tmp_path)
    assert second.count("up to date at Delta version") == 2  # postgres and mysql
    for kind, connection in export_connections.items():
        assert count_rows(connection, table) == counts[kind]
        assert run_sql(connection, "SELECT COUNT(*) FROM _medallion_exports")[0][0] == 1
    assert cluster.applications().count("medallion-export") == 2
