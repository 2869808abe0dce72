"""Throwaway PostgreSQL and MariaDB servers: life cycle, least privilege, secrets kept secret."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from medallion.contracts.errors import ConfigError, DatabaseError, IdentifierError
from medallion.contracts.scenario import DatabaseTarget
from medallion.databases import (
    Connection,
    Secret,
    connect,
    external_connection,
    run_sql,
)
from medallion.local import DatabaseServer, MariaDBServer, PostgresServer

pytestmark = pytest.mark.integration

SERVER_CLASSES = [PostgresServer, MariaDBServer]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_exit(pid: int, timeout: float = 30.0) -> bool:
    """Block until a (non-child) process exits, via a pidfd: no sleep-polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


@pytest.mark.parametrize("server_class", SERVER_CLASSES, ids=["postgres", "mariadb"])
def test_server_starts_fast_serves_sql_and_stops_clean(server_class: type[DatabaseServer], capfd: pytest.CaptureFixture[str]) -> None:
    server = server_class(database="shop", user="exporter")
    connection = server.start()
    directory, port, pid = server.directory, server.port, server._process.pid  # type: ignore[union-attr]
    try:
        assert server.startup_seconds is not None and server.startup_seconds < 10
        assert connection.host == "127.0.0.1" and connection.database == "shop" and connection.user == "exporter"
        assert run_sql(connection, "SELECT 40 + 2") == [(42,)]
        assert directory is not None and directory.is_dir()
        assert port_open(port)  # type: ignore[arg-type]
        assert server.start() is connection  # idempotent
    finally:
        server.stop()
    assert not server.running and wait_for_exit(pid, timeout=1)
    assert not port_open(port)  # type: ignore[arg-type]
    assert not directory.exists()
    server.stop()  # twice is fine
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # silent unless verbose=True


@pytest.mark.parametrize("server_class", SERVER_CLASSES, ids=["postgres", "mariadb"])
def test_with_block_stops_server_when_the_body_raises(server_class: type[DatabaseServer]) -> None:
    with pytest.raises(RuntimeError, match="boom"), server_class() as server:
        pid, directory = server._process.pid, server.directory  # type: ignore[union-attr]
        raise RuntimeError("boom")
    assert wait_for_exit(pid, timeout=1)
    assert directory is not None and not directory.exists()


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_servers_die_with_the_python_process(ending: str, tmp_path: Path) -> None:
    """atexit stops servers nobody stopped; the parent-death signal covers kill -9."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from medallion.local import MariaDBServer, PostgresServer
        servers = [PostgresServer(), MariaDBServer()]
        for server in servers:
            server.start()
        print(" ".join(str(s._process.pid) for s in servers), flush=True)
        if {ending!r} == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        sys.exit(0)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2, result.stderr
    assert all(wait_for_exit(pid, timeout=30) for pid in pids)
    # After kill -9 the directories stay behind; the next server start removes them.
    leftovers = sorted(Path(tempfile.gettempdir()).glob("medallion-postgresql-*"))
    with PostgresServer():
        pass
    assert not [d for d in leftovers if d.exists() and (d / "medallion-owner").exists()
                and str(pids[0]) in (d / "medallion-owner").read_text()]


def test_postgres_export_user_has_least_privilege(postgres_server: PostgresServer) -> None:
    with postgres_server.sql() as session:
        # Everything the export needs, in its own database...
        session.execute("CREATE TABLE lp_probe (k text PRIMARY KEY, v bigint)")
        session.execute("INSERT INTO lp_probe VALUES ('a', 1)")
        session.execute("UPDATE lp_probe SET v = 2 WHERE k = 'a'")
        assert session.query("SELECT k, v FROM lp_probe") == [("a", 2)]
        session.execute("DELETE FROM lp_probe")
        session.execute("DROP TABLE lp_probe")
        assert session.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user") == [
            (False, False, False)
        ]
        # ...and nothing more.
        refused = {
            "CREATE DATABASE other": "permission denied to create database",
            "CREATE ROLE intruder": "permission denied to create role",
            "ALTER ROLE medallion SUPERUSER": "must be superuser",
            "SELECT * FROM pg_authid": "permission denied",
            "COPY (SELECT 1) TO PROGRAM 'true'": "must be superuser or have privileges of the pg_execute_server_program",
        }
        for statement, message in refused.items():
            with pytest.raises(DatabaseError, match=message):
                session.execute(statement)
    other_db = Connection(
        kind="postgres", host="127.0.0.1", port=postgres_server.connection.port, database="postgres",
        user="medallion", password=postgres_server.connection.password,
    )
    with pytest.raises(DatabaseError, match="permission denied for database"):
        connect(other_db)


def test_mariadb_export_user_has_least_privilege(mariadb_server: MariaDBServer) -> None:
    with mariadb_server.sql() as session:
        session.execute("CREATE TABLE lp_probe (k VARCHAR(10) PRIMARY KEY, v BIGINT)")
        session.execute("INSERT INTO lp_probe VALUES ('a', 1)")
        session.execute("UPDATE lp_probe SET v = 2 WHERE k = 'a'")
        assert session.query("SELECT k, v FROM lp_probe") == [("a", 2)]
        session.execute("DELETE FROM lp_probe")
        session.execute("DROP TABLE lp_probe")
        grants = [row[0] for row in session.query("SHOW GRANTS")]
        on_database = [g for g in grants if " ON `medallion`.* " in g]
        assert len(on_database) == 1, grants
        granted = {p.strip() for p in on_database[0].removeprefix("GRANT ").split(" ON ")[0].split(",")}
        # Tables and their keys, and the catalogue views over served entities: nothing more.
        assert granted == {"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "CREATE VIEW", "REFERENCES"}, grants
        assert not any("GRANT OPTION" in g or "ALL PRIVILEGES" in g for g in grants), grants
        refused = {
            "CREATE DATABASE other": "Access denied",
            "CREATE USER intruder IDENTIFIED BY 'x'": "Access denied",
            "SELECT * FROM mysql.user": "denied",
            "GRANT SELECT ON medallion.* TO 'medallion'@'127.0.0.1'": "denied",
            "CREATE TABLE mysql.probe (a INT)": "denied",
        }
        for statement, message in refused.items():
            with pytest.raises(DatabaseError, match=message):
                session.execute(statement)


@pytest.mark.parametrize("fixture", ["postgres_server", "mariadb_server"])
def test_password_never_in_repr_url_logs_or_errors(fixture: str, request: pytest.FixtureRequest) -> None:
    server: DatabaseServer = request.getfixturevalue(fixture)
    connection = server.connection
    password = connection.reveal_password()
    assert len(password) >= 24
    shown = [repr(connection), str(connection), f"{connection}", connection.jdbc_url, repr(connection.password),
             str(connection.password), repr(server)]
    assert all(password not in text for text in shown)
    assert "********" in repr(connection.password)
    assert connection.jdbc_properties()["password"] == password  # only as a separate property
    assert password not in connection.jdbc_properties()["url"]
    # The server's own files never saw the clear text (SCRAM verifier / native hash only).
    assert server.directory is not None
    for log in server.directory.glob("*.log"):
        assert password not in log.read_text(errors="replace"), log
    # A failed login's message names the user and server, never the password.
    wrong_db = Connection(
        kind=connection.kind, host=connection.host, port=connection.port, database="nope",
        user=connection.user, password=connection.password, params=connection.params,
    )
    with pytest.raises(DatabaseError) as failure:
        connect(wrong_db)
    assert password not in str(failure.value) and "nope" in str(failure.value)


def test_secret_masks_itself_everywhere() -> None:
    secret = Secret("hunter2-very-secret")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]} {({'p': secret})}"
    assert secret.scrub("login hunter2-very-secret failed") == "login ******** failed"


def test_external_server_from_config_and_environment(postgres_server: PostgresServer) -> None:
    exported = postgres_server.connection
    target = DatabaseTarget(url=f"postgresql://127.0.0.1:{exported.port}/medallion", user="medallion",
                            password_env="TEST_PG_PASSWORD")
    with pytest.raises(ConfigError, match="TEST_PG_PASSWORD") as missing:
        external_connection("postgres", target, environ={})
    assert exported.reveal_password() not in str(missing.value)

    connection = external_connection("postgres", target, environ={"TEST_PG_PASSWORD": exported.reveal_password()})
    assert connection is not None
    assert connection.jdbc_url == f"jdbc:postgresql://127.0.0.1:{exported.port}/medallion"
    assert run_sql(connection, "SELECT current_user, current_database()") == [("medallion", "medallion")]

    # The environment overrides the scenario: URL and user.
    env = {"MEDALLION_POSTGRES_URL": f"jdbc:postgresql://localhost:{exported.port}/medallion",
           "MEDALLION_POSTGRES_USER": "someone", "TEST_PG_PASSWORD": "x"}
    overridden = external_connection("postgres", target, environ=env)
    assert overridden is not None and overridden.host == "localhost" and overridden.user == "someone"
    assert external_connection("postgres", DatabaseTarget(), environ={}) is None  # -> throwaway server


def test_urls_with_credentials_or_bad_names_are_refused() -> None:
    target = DatabaseTarget(password_env="P")
    for url in ("postgresql://bob:pw@db:5432/x", "postgresql://bob@db/x", "postgresql://db/x?password=pw"):
        with pytest.raises(ConfigError) as refused:
            external_connection("postgres", target, environ={"MEDALLION_POSTGRES_URL": url, "P": "pw"})
        assert ":pw@" not in str(refused.value) and "password=pw" not in str(refused.value)
    with pytest.raises(ConfigError, match="mysql URL"):
        external_connection("mysql", target, environ={"MEDALLION_MYSQL_URL": "postgresql://db/x", "P": "pw"})
    with pytest.raises(IdentifierError, match="cannot be used in SQL"):
        PostgresServer(database="x; DROP DATABASE postgres")
    mysql = external_connection("mysql", target, environ={"MEDALLION_MYSQL_URL": "mariadb://db/x", "P": "pw"})
    assert mysql is not None and mysql.jdbc_url == "jdbc:mysql://db:3306/x?connectionTimeZone=UTC"
    assert mysql.driver == "com.mysql.cj.jdbc.Driver"


def test_stopped_server_refuses_connection_property() -> None:
    server = PostgresServer()
    with pytest.raises(DatabaseError, match="not running"):
        _ = server.connection
