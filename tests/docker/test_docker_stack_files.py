"""The files `make docker-test` adds or relies on, checked without Docker: the test-only database
override, the root .dockerignore, healthchecks, non-root images, the build-time CA secret, and
the CI wiring. scripts/docker_test.py runs them all for real (docker/README.md has its figures).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType

import yaml

from tests.support.compose import (
    DOCKER,
    DOCKERFILE,
    GENERATOR_DOCKERFILE,
    ROOT,
    copied_sources,
    dockerfile_instructions,
    load_compose,
    run_commands,
)

LOCAL_DB_FILE = DOCKER / "docker-compose.local-db.yml"
DB_DOCKERFILES = {"postgres": DOCKER / "local-db" / "postgres.Dockerfile",
                  "mysql": DOCKER / "local-db" / "mariadb.Dockerfile"}
PYTHON_STANDIN = DOCKER / "base" / "python.Dockerfile"
ALL_DOCKERFILES = [DOCKERFILE, GENERATOR_DOCKERFILE, *DB_DOCKERFILES.values(), PYTHON_STANDIN]
ENV = {"MEDALLION_POSTGRES_PASSWORD": "pg", "MEDALLION_MYSQL_PASSWORD": "my", "JUPYTER_TOKEN": "tok",
       "MEDALLION_CONTROL_TOKEN": "ctl-dummy-0123456789"}
# The environment contract of the official images the stand-ins honour.
DB_CONTRACT = {"postgres": {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB"},
               "mysql": {"MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD",
                         "MYSQL_RANDOM_ROOT_PASSWORD"}}


def docker_test_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docker_test", ROOT / "scripts" / "docker_test.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_db_override_swaps_only_the_database_images() -> None:
    override = yaml.safe_load(LOCAL_DB_FILE.read_text(encoding="utf-8"))
    assert set(override) == {"services"} and set(override["services"]) == set(DB_DOCKERFILES)
    base = load_compose(ENV)["services"]
    for service, dockerfile in DB_DOCKERFILES.items():
        spec = override["services"][service]
        assert set(spec) == {"image", "build"}, "environment, volumes, ports, healthcheck stay the official ones"
        assert spec["image"].startswith("medallion/") and spec["image"] != base[service]["image"]
        assert (LOCAL_DB_FILE.parent / spec["build"]["context"] / spec["build"]["dockerfile"]).resolve() == dockerfile
        entrypoint = DOCKER / "local-db" / f"{dockerfile.name.split('.')[0]}-entrypoint.sh"
        text = entrypoint.read_text(encoding="utf-8")
        honoured = {name for name in DB_CONTRACT[service] if name in text}
        assert honoured == DB_CONTRACT[service], DB_CONTRACT[service] - honoured
        # Every variable the compose file gives the official image, the stand-in reads.
        assert set(base[service]["environment"]) <= DB_CONTRACT[service]
        assert f"docker/local-db/{entrypoint.name}" in copied_sources(dockerfile)


def test_root_dockerignore_sends_only_what_the_dockerfiles_copy() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*", "deny everything first"
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    for dockerfile in ALL_DOCKERFILES:
        if dockerfile == PYTHON_STANDIN:
            continue  # built from docker/base as its context
        for source in copied_sources(dockerfile):
            assert any(source == a or source.startswith(f"{a}/") for a in allowed), (dockerfile.name, source)
    assert not any(a.startswith((".venv", ".jars", "data", "demo-data", ".git")) for a in allowed)


def test_long_running_services_have_healthchecks() -> None:
    services = load_compose(ENV)["services"]
    for name in ("spark-master", "spark-worker", "generator", "pipeline", "jupyter", "postgres", "mysql"):
        check = services[name]["healthcheck"]["test"]
        assert check[0] == "CMD" and len(check) > 1, name
    # JupyterLab runs its notebooks' sessions on the cluster, as a non-root user.
    jupyter = services["jupyter"]
    assert "--allow-root" not in jupyter["command"]
    assert jupyter["environment"]["MEDALLION_SPARK_MASTER"] == "spark://spark-master:7077"


def test_images_run_as_a_plain_user_and_have_no_syntax_line() -> None:
    for dockerfile in ALL_DOCKERFILES:
        assert not re.search(r"^#\s*syntax=", dockerfile.read_text(encoding="utf-8"), re.MULTILINE | re.IGNORECASE), (
            f"{dockerfile.name}: a syntax line makes BuildKit fetch its frontend from a registry")
        if dockerfile == PYTHON_STANDIN:
            continue  # a base image, as root as the official one
        users = [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "USER"]
        assert users and users[-1] not in ("root", "0"), dockerfile.name
    # The Spark and generator images share one uid: both write the /data volume.
    uids = {re.search(r"useradd --uid (\d+)", " ".join(run_commands(f)))[1]  # type: ignore[index]
            for f in (DOCKERFILE, GENERATOR_DOCKERFILE)}
    assert len(uids) == 1


def test_downloads_in_the_build_can_trust_an_extra_ca_without_storing_it() -> None:
    for dockerfile in (DOCKERFILE, GENERATOR_DOCKERFILE):
        raw = [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "RUN"]
        for arguments, command in zip(raw, run_commands(dockerfile), strict=True):
            if "pip install" in command or "medallion setup" in command:
                assert arguments.startswith("--mount=type=secret,id=extra_ca "), command
                assert "with-extra-ca" in command, command
    wrapper = (DOCKER / "base" / "with-extra-ca.sh").read_text(encoding="utf-8")
    assert "/run/secrets/extra_ca" in wrapper and "rm -f" in wrapper
    # No certificate is ever committed.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        path = ROOT / name
        assert not name.endswith((".pem", ".crt")), name
        if path.is_file() and path.stat().st_size < 2_000_000:
            assert b"-----BEGIN " + b"CERTIFICATE-----" not in path.read_bytes(), name


def test_ci_runs_the_tests_and_make_runs_the_docker_stack() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("make ")]
    assert commands == ["make test", "make docker-test"]  # the suite first, then the Docker stack
    assert "set -euo pipefail" in ci
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^docker-test:\n\tpython3 scripts/docker_test.py$", makefile, re.MULTILINE)
    # The runner starts every service `up` starts (not the opt-in profiles) and pins the tag the
    # Dockerfiles default to.
    module = docker_test_module()
    services = load_compose(ENV)["services"]
    started = {name for name, spec in services.items() if not spec.get("profiles")}
    assert set(module.SERVICES) == started
    assert all(re.search(rf"^ARG BASE_IMAGE={re.escape(module.OFFICIAL_PYTHON)}$", f.read_text(encoding="utf-8"),
                         re.MULTILINE) for f in (DOCKERFILE, GENERATOR_DOCKERFILE))


def test_docker_readme_documents_the_run() -> None:
    readme = (DOCKER / "README.md").read_text(encoding="utf-8")
    for needle in ("make docker-test", "docker-compose.local-db.yml", "extra_ca", "sha256:", "VACUUM"):
        assert needle in readme, needle
    assert "make docker-test" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_no_dockerfile_copies_from_outside_the_context() -> None:
    for dockerfile in ALL_DOCKERFILES:
        for source in copied_sources(dockerfile):
            assert not Path(source).is_absolute() and ".." not in Path(source).parts, (dockerfile.name, source)


def test_every_file_a_dockerfile_copies_is_committed() -> None:
    # A clean clone must build: an ignored path (e.g. a folder named `build/`) would be missing.
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    for dockerfile in ALL_DOCKERFILES:
        assert str(dockerfile.relative_to(ROOT)) in tracked, dockerfile.name
        for source in copied_sources(dockerfile):
            assert source in tracked or any(t.startswith(f"{source}/") for t in tracked), (dockerfile.name, source)
    assert "docker/base/with-extra-ca.sh" in tracked


def test_the_local_debian_base_is_slimmed_like_the_official_slim_images(tmp_path: Path) -> None:
    module = docker_test_module()
    rootfs = tmp_path / "rootfs"
    files = {
        "var/cache/apt/archives/libc6_2.36_amd64.deb": False, "var/lib/apt/lists/deb.debian.org_Packages": False,
        "var/lib/apt/lists/lock": True, "usr/share/doc/libc6/changelog.gz": False,
        "usr/share/doc/libc6/copyright": True, "usr/share/man/man1/ls.1.gz": False,
        "usr/share/locale/de/LC_MESSAGES/dpkg.mo": False, "usr/share/locale/locale.alias": True,
        "usr/bin/bash": True, "etc/apt/sources.list": True,
    }
    for name in files:
        (rootfs / name).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / name).write_text("x", encoding="utf-8")
    module.slim_rootfs(rootfs)
    assert {name: (rootfs / name).exists() for name in files} == files
    excludes = (rootfs / "etc/dpkg/dpkg.cfg.d/medallion-slim").read_text(encoding="utf-8")
    assert "path-exclude /usr/share/doc/*" in excludes and "path-include /usr/share/doc/*/copyright" in excludes
