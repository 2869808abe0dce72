"""docker/ checked without Docker: the compose file's structure, commands, secrets and variables,
and the two Dockerfiles. The commands themselves run in `make docker-test` (some also in tests/docker/test_docker_commands.py).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from medallion.cli import build_parser
from medallion.contracts.scenario_loader import load_scenario
from medallion.databases import resolve_connections
from medallion.local.cluster import StandaloneCluster
from tests.support.compose import (
    COMPOSE_FILE,
    DOCKER_README,
    DOCKERFILE,
    GENERATOR_DOCKERFILE,
    GENERATOR_REQUIREMENTS,
    ROOT,
    MissingVariable,
    command_of,
    copied_sources,
    dockerfile_base_image,
    dockerfile_instructions,
    environment_of,
    interpolate,
    load_compose,
    raw_compose,
    referenced_variables,
    required_variables,
    run_commands,
)

SERVICES = {"spark-master", "spark-worker", "generator", "pipeline", "export", "jupyter", "postgres", "mysql",
            "prometheus", "grafana", "spark-history", "retention"}
# Official images that run their own default command.
IMAGE_COMMANDS = {"postgres", "mysql", "prometheus", "grafana"}
# What a service may run: (command prefix, image it needs).
KNOWN_COMMANDS = {
    ("spark-class", "org.apache.spark.deploy.master.Master"): "medallion-spark",
    ("spark-class", "org.apache.spark.deploy.worker.Worker"): "medallion-spark",
    ("spark-class", "org.apache.spark.deploy.history.HistoryServer"): "medallion-spark",
    ("medallion", "generate"): "medallion-generator",
    ("medallion", "pipeline"): "medallion-spark",
    ("medallion", "export"): "medallion-spark",
    ("medallion", "retention"): "medallion-spark",
    ("jupyter", "lab"): "medallion-spark",
}
# Keys of the Compose specification this file may use (a subset of the spec's service keys).
SERVICE_KEYS = {"image", "build", "command", "environment", "ports", "volumes", "depends_on", "deploy",
                "healthcheck", "profiles", "stop_grace_period", "stop_signal", "restart"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval"}
DATA_SERVICES = {"spark-worker", "generator", "pipeline", "export", "jupyter", "spark-history", "retention"}
SECRET_KEY = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|_PWD$", re.IGNORECASE)
# Keys that look secret but hold a switch, not a secret.
NOT_SECRETS = {"MYSQL_RANDOM_ROOT_PASSWORD": "yes"}
# Secrets a user may leave unset (the opt-in Grafana keeps its own first-login prompt then).
OPTIONAL_SECRETS = {"GF_SECURITY_ADMIN_PASSWORD": "GRAFANA_ADMIN_PASSWORD"}
# The official base image, pinned to a version tag (its digest is in docker/README.md).
PINNED_PYTHON = "python:3.11.13-slim-bookworm"
DUMMY_ENV = {"MEDALLION_POSTGRES_PASSWORD": "pg-dummy", "MEDALLION_MYSQL_PASSWORD": "my-dummy", "JUPYTER_TOKEN": "tok-dummy",
             "MEDALLION_CONTROL_TOKEN": "ctl-dummy-0123456789"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose(DUMMY_ENV)


def image_of(service: dict) -> str:
    return str(service.get("image", "")).split(":")[0]


def test_compose_has_the_services_and_only_spec_keys(compose: dict) -> None:
    assert set(compose) <= {"name", "services", "volumes", "networks"} | {k for k in compose if k.startswith("x-")}
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: unexpected keys {set(service) - SERVICE_KEYS}"
        assert "image" in service, name
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES
            assert condition["condition"] in ("service_started", "service_healthy", "service_completed_successfully")
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][dependency], f"{name} waits for {dependency}'s health"
    assert compose["services"]["postgres"]["image"] == "postgres:16"
    assert compose["services"]["mysql"]["image"] == "mysql:8.4"
    assert "healthcheck" in compose["services"]["postgres"] and "healthcheck" in compose["services"]["mysql"]


def test_every_command_is_a_known_command_in_the_right_image(compose: dict) -> None:
    for name, service in compose["services"].items():
        if name in IMAGE_COMMANDS:
            assert "command" not in service, "the official images run their default command"
            continue
        command = command_of(service)
        key = (command[0], command[1])
        assert key in KNOWN_COMMANDS, f"{name} runs {command[:2]}, not one of {sorted(KNOWN_COMMANDS)}"
        assert image_of(service) == KNOWN_COMMANDS[key], f"{name} runs {key} in {image_of(service)}"
        build = service.get("build")
        assert build["context"] == ".."
        assert (COMPOSE_FILE.parent / build["context"] / build["dockerfile"]).resolve().is_file()


def test_medallion_commands_parse_with_the_real_cli(compose: dict) -> None:
    parser = build_parser()
    parsed = {}
    for name, service in compose["services"].items():
        command = command_of(service) if "command" in service else []
        if command[:1] == ["medallion"]:
            parsed[name] = parser.parse_args(command[1:])
    generator, pipeline, export = parsed["generator"], parsed["pipeline"], parsed["export"]
    assert (generator.scenario, generator.seed, str(generator.data), generator.speed, generator.serve) == (
        "driving", 42, "/data", 90.0, "0.0.0.0:8000")
    assert generator.batches is None and generator.duration is None, "the generator runs continuously"
    assert generator.profile is None, "MEDALLION_GENERATOR_PROFILE unset: the scenario as written, as before"
    assert pipeline.continuous and str(pipeline.data) == "/data" and pipeline.master == "spark://spark-master:7077"
    assert export.target == "all" and str(export.data) == "/data"
    assert compose["services"]["export"]["profiles"] == ["tools"], "export is one-shot, not started by `up`"
    # The scenario each command names exists (resolved as in the image, from configs/scenarios/).
    for args in parsed.values():
        load_scenario(args.scenario)


def test_generator_size_and_pace_come_from_the_environment() -> None:
    # What `make docker-test` sets for a light stack; a user's unset variables keep the defaults.
    light = load_compose({**DUMMY_ENV, "MEDALLION_GENERATOR_PROFILE": "small", "MEDALLION_GENERATOR_SPEED": "45"})
    args = build_parser().parse_args(command_of(light["services"]["generator"])[1:])
    assert (args.profile, args.speed) == ("small", 45.0)
    load_scenario(args.scenario, profile=args.profile)


def _flags(args: list[str]) -> dict[str, str]:
    return {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}


def test_spark_commands_are_the_ones_medallion_cluster_runs(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[tuple[str, ...]] = []
    cluster = StandaloneCluster(workers=1)
    monkeypatch.setattr(cluster, "_spawn", lambda name, *args: spawned.append(args))
    monkeypatch.setattr(cluster, "_found_master", lambda: True)
    monkeypatch.setattr(cluster, "alive_workers", lambda: 1)
    cluster.start()
    cluster.stop()
    master_local, worker_local = spawned
    master = command_of(compose["services"]["spark-master"])
    worker = command_of(compose["services"]["spark-worker"])
    assert master[0] == worker[0] == "spark-class"
    assert master[1] == master_local[0] and worker[1] == worker_local[0]
    assert set(_flags(master[2:])) == set(_flags(list(master_local[1:])))
    assert worker[2].startswith("spark://") and worker_local[1].startswith("spark://")
    assert set(_flags(worker[3:])) <= set(_flags(list(worker_local[2:])))
    master_flags = _flags(master[2:])
    assert worker[2] == f"spark://{master_flags['--host']}:{master_flags['--port']}"
    pipeline = command_of(compose["services"]["pipeline"])
    assert pipeline[pipeline.index("--master") + 1] == worker[2]


def test_data_volume_is_shared_by_every_service_that_reads_or_writes_data(compose: dict) -> None:
    assert "data" in compose["volumes"]
    for name in DATA_SERVICES:
        assert "data:/data" in compose["services"][name]["volumes"], name


def test_no_secret_is_written_in_the_file(compose: dict) -> None:
    raw = raw_compose()
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"password\s*=|://[^/\s@]+:[^/\s@]+@", text, re.IGNORECASE), "credentials in a URL or option"
    required = required_variables()
    for name, service in raw["services"].items():
        for key, value in environment_of(service).items():
            if not SECRET_KEY.search(key):
                continue
            if key in NOT_SECRETS:
                assert value == NOT_SECRETS[key]
                continue
            if key in OPTIONAL_SECRETS:  # from the environment too, but unset is allowed
                assert value == f"${{{OPTIONAL_SECRETS[key]}:-}}", f"{name}.{key}"
                continue
            match = re.fullmatch(r"\$\{([A-Z0-9_]+):\?[^}]+\}", value)
            assert match, f"{name}.{key} must be ${{VAR:?message}}, not {value!r}"
            assert match[1] in required
    # The passwords reach the containers from the environment only: Compose stops without them.
    for variable in required:
        env = {k: v for k, v in DUMMY_ENV.items() if k != variable}
        with pytest.raises(MissingVariable, match=variable):
            load_compose(env)
        with pytest.raises(MissingVariable, match=variable):
            load_compose({**env, variable: ""})


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET}-$$SET-$SET", env) == "x--$SET-x"
    assert interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-}", env) == "d  d "
    assert interpolate("${EMPTY?fine}", env) == ""
    with pytest.raises(MissingVariable):
        interpolate("${EMPTY:?no}", env)


def test_every_variable_is_documented_in_the_docker_readme(compose: dict) -> None:
    readme = DOCKER_README.read_text(encoding="utf-8")
    names = set(referenced_variables())
    for service in raw_compose()["services"].values():
        names |= set(environment_of(service))
    names |= set(image_environment(DOCKERFILE))
    names -= {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
    undocumented = sorted(n for n in names if f"`{n}`" not in readme)
    assert undocumented == []
    example = (COMPOSE_FILE.parent / "env.example").read_text(encoding="utf-8")
    for variable in referenced_variables():
        assert variable in example, f"env.example does not mention {variable}"
    for variable in required_variables():
        assert re.search(rf"^{variable}=$", example, re.MULTILINE), f"env.example must leave {variable} empty"


def image_environment(dockerfile: Path) -> dict[str, str]:
    """The `ENV KEY=value ...` settings of a Dockerfile (values without spaces, as written here)."""
    pairs = [part for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "ENV"
             for part in arguments.split() if "=" in part]
    return dict(pair.split("=", 1) for pair in pairs)


def test_export_environment_is_what_medallion_databases_reads(compose: dict) -> None:
    services = compose["services"]
    env = environment_of(services["export"])
    connections = resolve_connections(load_scenario("driving").export, ("postgres", "mysql"), environ=env)
    postgres_env, mysql_env = environment_of(services["postgres"]), environment_of(services["mysql"])
    pg, my = connections["postgres"], connections["mysql"]
    assert (pg.host, pg.port, pg.database, pg.user) == ("postgres", 5432, postgres_env["POSTGRES_DB"], postgres_env["POSTGRES_USER"])
    assert (my.host, my.port, my.database, my.user) == ("mysql", 3306, mysql_env["MYSQL_DATABASE"], mysql_env["MYSQL_USER"])
    # The export logs in with the very password the database container was initialised with.
    assert pg.reveal_password() == postgres_env["POSTGRES_PASSWORD"] == DUMMY_ENV["MEDALLION_POSTGRES_PASSWORD"]
    assert my.reveal_password() == mysql_env["MYSQL_PASSWORD"] == DUMMY_ENV["MEDALLION_MYSQL_PASSWORD"]
    assert "pg-dummy" not in pg.jdbc_url and "my-dummy" not in my.jdbc_url
    assert set(services["export"]["depends_on"]) >= {"postgres", "mysql"}


def test_ports_are_published_on_loopback_only(compose: dict) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_spark_image_dockerfile() -> None:
    assert dockerfile_base_image(DOCKERFILE) == PINNED_PYTHON
    runs = run_commands(DOCKERFILE)
    assert any("openjdk-17-jre-headless" in run for run in runs)
    env = image_environment(DOCKERFILE)
    assert env["MEDALLION_JARS_DIR"].startswith("/") and not env["MEDALLION_JARS_DIR"].startswith("/opt/medallion/")
    assert "with-extra-ca medallion setup; medallion jars" in runs, "jars are fetched at build time and their presence checked"
    assert any(run.startswith("with-extra-ca pip install") and " -e ." in run for run in runs)
    assert any("jupyterlab" in run for run in runs)
    for source in copied_sources(DOCKERFILE):
        assert (ROOT / source).exists(), source


def test_generator_dockerfile_is_slim() -> None:
    instructions = dockerfile_instructions(GENERATOR_DOCKERFILE)
    text = " ".join(arguments for _, arguments in instructions).lower()
    assert dockerfile_base_image(GENERATOR_DOCKERFILE) == PINNED_PYTHON
    assert "java" not in text and "jdk" not in text and "pyspark" not in text
    runs = run_commands(GENERATOR_DOCKERFILE)
    assert "with-extra-ca pip install -r /tmp/generator-requirements.txt" in runs
    assert "with-extra-ca pip install --no-deps -e ." in runs
    sources = copied_sources(GENERATOR_DOCKERFILE)
    assert "spark_jobs" not in sources
    assert {"medallion", "generators", "configs", "pyproject.toml"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source


def test_dockerignore_lets_every_copied_source_through() -> None:
    for dockerfile in (DOCKERFILE, GENERATOR_DOCKERFILE):
        ignore = Path(f"{dockerfile}.dockerignore").read_text(encoding="utf-8").splitlines()
        allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
        assert "*" in ignore
        assert set(copied_sources(dockerfile)) <= allowed, dockerfile.name


def test_generator_requirements_match_pyproject_and_exclude_spark() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {Requirement(r).name.lower(): Requirement(r).specifier for r in pyproject["project"]["dependencies"]}
    lines = [line.strip() for line in GENERATOR_REQUIREMENTS.read_text(encoding="utf-8").splitlines()]
    wanted = [Requirement(line) for line in lines if line and not line.startswith("#")]
    names = {r.name.lower() for r in wanted}
    assert {"numpy", "pydantic", "pyyaml"} <= names
    assert not names & {"pyspark", "delta-spark", "psycopg", "pymysql", "matplotlib"}
    for requirement in wanted:
        assert requirement.specifier == declared[requirement.name.lower()], requirement.name


def test_grafana_dashboard_reads_only_series_the_pipeline_serves(compose: dict) -> None:
    import json

    from medallion.observe import PipelineMetrics

    served = {sample.name for metric in PipelineMetrics().registry.collect() for sample in metric.samples}
    served |= {m.name for m in PipelineMetrics().registry.collect()}
    # Histograms and counters have samples only once observed: name their series by type.
    for metric in PipelineMetrics().registry.collect():
        if metric.type == "histogram":
            served |= {f"{metric.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        elif metric.type == "counter":
            served.add(f"{metric.name}_total")
    dashboard = json.loads((COMPOSE_FILE.parent / "grafana" / "dashboards" / "medallion.json").read_text(encoding="utf-8"))
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\b(medallion_[a-z_]+)", expr)}
    assert used and used <= served, used - served
    # Prometheus scrapes the address the pipeline serves at, on the compose network.
    pipeline = command_of(compose["services"]["pipeline"])
    address = pipeline[pipeline.index("--metrics-address") + 1]
    scrape = (COMPOSE_FILE.parent / "prometheus.yml").read_text(encoding="utf-8")
    assert f'"pipeline:{address.rsplit(":", 1)[1]}"' in scrape
    assert address.startswith("0.0.0.0:"), "inside its container the pipeline must listen beyond loopback"


def test_history_server_reads_where_the_pipeline_writes_event_logs(compose: dict) -> None:
    from medallion.contracts.layout import DataRoot

    options = environment_of(compose["services"]["spark-history"])["SPARK_HISTORY_OPTS"]
    folder = re.search(r"-Dspark\.history\.fs\.logDirectory=file:(\S+)", options)
    pipeline = command_of(compose["services"]["pipeline"])
    data = pipeline[pipeline.index("--data") + 1]
    assert folder and folder[1] == str(DataRoot(Path(data)).spark_events)
