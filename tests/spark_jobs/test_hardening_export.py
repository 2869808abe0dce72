"""A database dying during `medallion export`, and storage failing under `medallion report`.

Real servers and real Spark: the MariaDB server is killed with SIGKILL at fixed points of the
real export path (ExportHooks), restarted on its data directory, and the export rerun; the
report is written into a real, full tmpfs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from medallion import cli
from medallion.contracts.errors import DatabaseError
from medallion.databases import Connection
from medallion.local import MariaDBServer, PostgresServer
from spark_jobs import export
from spark_jobs.config import ExportConfig, export_config
from spark_jobs.export import ExportHooks, ExportStep
from spark_jobs.session import SessionOptions, session_config
from tests.spark_jobs.test_export import FIRST, TABLE, db_rows, gold_rows, ledger, merge_gold, row
from tests.support.databases import reset_database
from tests.support.mounts import tmpfs

pytestmark = [pytest.mark.integration, pytest.mark.spark]


@pytest.fixture
def cfg(tmp_path: Path) -> ExportConfig:
    from medallion.contracts.layout import DataRoot

    return export_config("driving", DataRoot(tmp_path / "data"))


@pytest.fixture
def doomed_mariadb() -> Iterator[MariaDBServer]:
    """A MariaDB server of this test alone: it gets killed."""
    server = MariaDBServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def production_conf(spark: SparkSession) -> Iterator[None]:
    """run_export applies production settings to the shared session; put the test's back."""
    saved = {key: spark.conf.get(key, None) for key in session_config(SessionOptions())}
    yield
    for key, value in saved.items():
        if value is not None and spark.conf.isModifiable(key):
            spark.conf.set(key, value)


def kill(server: MariaDBServer) -> None:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while server.running:
        time.sleep(0.01)


def test_database_killed_mid_export_is_one_line_names_committed_targets_and_rerun_is_exactly_once(
    spark: SparkSession,
    cfg: ExportConfig,
    postgres_server: PostgresServer,
    doomed_mariadb: MariaDBServer,
    production_conf: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    reset_database(postgres_server)
    connections: dict[str, Connection] = {"postgres": postgres_server.connection, "mysql": doomed_mariadb.connection}
    passwords = [c.reveal_password() for c in connections.values()]
    monkeypatch.setenv("MEDALLION_POSTGRES_URL", f"postgresql://127.0.0.1:{postgres_server.port}/medallion")
    monkeypatch.setenv("MEDALLION_MYSQL_URL", f"jdbc:mariadb://127.0.0.1:{doomed_mariadb.port}/medallion")
    monkeypatch.setenv("MEDALLION_POSTGRES_PASSWORD", passwords[0])
    monkeypatch.setenv("MEDALLION_MYSQL_PASSWORD", passwords[1])
    # What `medallion export --scenario driving --data DIR` runs.
    cli_cfg = export_config("driving", cfg.data.root)
    cli_session = SessionOptions(app_name="medallion-export")
    merge_gold(spark, cfg, FIRST)

    # 1. MariaDB dies while Spark is about to write its staging table (JDBC, inside the JVM).
    def kill_before_mysql_staging(step: ExportStep) -> None:
        if step.target == "mysql":
            kill(doomed_mariadb)

    with pytest.raises(DatabaseError) as failed:
        export.run_export(cli_cfg, cli_session, hooks=ExportHooks(before_staging=kill_before_mysql_staging))
    message = str(failed.value)
    out, err = capfd.readouterr()
    assert failed.value.exit_code == 4
    assert "\n" not in message and len(message) < 1000, message
    assert message.startswith("export to mysql failed: Spark could not write the staging table"), message
    assert f"committed before the failure: {TABLE} -> postgres" in message, message
    assert "a rerun skips what is committed" in message
    assert f"{TABLE} -> postgres: 3 upserted" in out  # printed when it committed, before mysql failed
    assert all(p not in message + out + err for p in passwords)  # also the JVM's own log output
    assert db_rows(connections["postgres"]) == gold_rows(spark, cfg)

    doomed_mariadb.restart()
    merge_gold(spark, cfg, [row("c-00002", 8, 0, 8, 41.0), row("c-00005", 9, 0, 1, 5.0)])  # v2

    # 2. MariaDB is stopped between the targets: PostgreSQL commits, MySQL cannot connect.
    def kill_while_postgres_commits(step: ExportStep) -> None:
        if step.target == "postgres":
            kill(doomed_mariadb)

    with pytest.raises(DatabaseError) as failed:
        export.run_export(cli_cfg, cli_session, hooks=ExportHooks(before_commit=kill_while_postgres_commits))
    message = str(failed.value)
    out, _ = capfd.readouterr()
    assert failed.value.exit_code == 4 and "\n" not in message
    assert message.startswith("export to mysql failed: could not connect to mysql://medallion@127.0.0.1"), message
    assert f"committed before the failure: {TABLE} -> postgres" in message, message
    assert f"{TABLE} -> postgres: 2 upserted" in out

    # 3. Back up: the rerun brings MySQL to the current version in one batch, PostgreSQL is skipped.
    doomed_mariadb.restart()
    export.run_export(cli_cfg, cli_session)
    out, _ = capfd.readouterr()
    assert f"{TABLE} -> postgres: up to date at Delta version 2" in out
    assert f"{TABLE} -> mysql: 4 upserted, 0 deleted (Delta v2, full snapshot)" in out
    expected = gold_rows(spark, cfg)
    for connection in connections.values():
        assert db_rows(connection) == expected
    assert ledger(connections["mysql"]) == [(TABLE, 2, None, "snapshot", 4, 0)]
    assert ledger(connections["postgres"]) == [(TABLE, 1, None, "snapshot", 3, 0), (TABLE, 2, 2, "changes", 2, 0)]


def test_cli_prints_a_killed_database_as_one_line_with_exit_4(
    spark: SparkSession,
    cfg: ExportConfig,
    doomed_mariadb: MariaDBServer,
    production_conf: None,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    merge_gold(spark, cfg, FIRST)
    monkeypatch.setenv("MEDALLION_MYSQL_URL", f"mysql://127.0.0.1:{doomed_mariadb.port}/medallion")
    monkeypatch.setenv("MEDALLION_MYSQL_PASSWORD", doomed_mariadb.connection.reveal_password())
    kill(doomed_mariadb)
    code = cli.main(["export", "--scenario", "driving", "--data", str(cfg.data.root), "--target", "mysql"])
    out, err = capfd.readouterr()
    assert code == 4
    assert err.count("\n") == 1 and err.startswith("medallion export: error: export to mysql failed: could not connect"), err
    assert doomed_mariadb.connection.reveal_password() not in out + err


@pytest.fixture
def full_folder(tmp_path: Path) -> Iterator[Path]:
    """A real full file system: a 1 MiB tmpfs holding a previous report, filled to the last byte."""
    with tmpfs(tmp_path / "full", "size=1m", full=True, before_filling={"report.html": "the previous report"}) as folder:
        yield folder


def test_report_on_a_full_disk_is_one_line_and_keeps_the_previous_report(
    spark: SparkSession,
    cfg: ExportConfig,
    full_folder: Path,
    production_conf: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from datetime import datetime

    from spark_jobs.metrics import ProgressRow
    from spark_jobs.schemas import METRICS_SCHEMA

    rows = [ProgressRow("bronze_x", "run", i, datetime(2026, 1, 5, 8, i), 50 + i, None, 100.0 + i, 900 + i, None, None)
            for i in range(5)]
    spark.createDataFrame(rows, METRICS_SCHEMA).write.format("delta").save(str(cfg.data.metrics))
    code = cli.main(["report", "--data", str(cfg.data.root), "--out", str(full_folder / "report.html")])
    _, err = capfd.readouterr()
    assert code == 1, err
    assert err.count("\n") == 1 and "medallion report: error: could not write the report" in err, err
    assert "No space left on device" in err and "free some space" in err
    assert (full_folder / "report.html").read_text() == "the previous report"
    assert sorted(p.name for p in full_folder.iterdir()) == ["filler", "report.html"]
