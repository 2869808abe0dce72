"""The pinned pyspark + delta-spark pair really writes, reads, merges and time-travels Delta."""

from __future__ import annotations

import shutil

import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, StructField, StructType

pytestmark = pytest.mark.spark


def test_delta_write_read_merge_and_history(spark: SparkSession, tmp_path) -> None:
    path = str(tmp_path / "t")
    spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string").write.format("delta").save(path)
    updates = spark.createDataFrame([(2, "B"), (3, "c")], "id int, v string")
    (
        DeltaTable.forPath(spark, path).alias("t")
        .merge(updates.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    )
    rows = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert rows == [(1, "a"), (2, "B"), (3, "c")]
    first = sorted(tuple(r) for r in spark.read.format("delta").option("versionAsOf", 0).load(path).collect())
    assert first == [(1, "a"), (2, "b")]
    operations = [r["operation"] for r in DeltaTable.forPath(spark, path).history().collect()]
    assert operations == ["MERGE", "WRITE"]


def test_a_replayed_append_is_a_no_op(spark: SparkSession, tmp_path) -> None:
    from spark_jobs.storage import append_idempotent, committed_version

    path = str(tmp_path / "t")
    df = spark.createDataFrame([(1,)], "id int")
    assert committed_version(path, "app-1") == -1
    assert append_idempotent(df, path, "app-1", 7)
    assert not append_idempotent(df, path, "app-1", 7)  # the replay of micro-batch 7
    assert append_idempotent(df, path, "app-2", 7)  # a new checkpoint has a new app id
    DeltaTable.forPath(spark, path).optimize().executeCompaction()  # commits without a marker between
    assert not append_idempotent(df, path, "app-1", 6)
    assert append_idempotent(df, path, "app-1", 8)
    assert (committed_version(path, "app-1"), committed_version(path, "app-2"), committed_version(path, "app")) == (8, 7, -1)
    assert spark.read.format("delta").load(path).count() == 3
    # What Delta's own options recorded (a table written before medallion named its batches in
    # the commit) still counts, so a replay after an upgrade is skipped too.
    df.write.format("delta").mode("append").option("txnAppId", "app-3").option("txnVersion", 4).save(path)
    assert committed_version(path, "app-3") == 4
    assert not append_idempotent(df, path, "app-3", 4)
    assert spark.read.format("delta").load(path).count() == 4
    # The commit that wrote a batch says so, for anyone reading the table's history.
    latest = DeltaTable.forPath(spark, path).history().where("operation = 'WRITE'").orderBy("version").collect()
    assert '"app": "app-1", "version": 8' in latest[-2]["userMetadata"]


def test_a_bronze_batch_written_by_delta_s_sink_before_a_crash_is_not_written_again(spark: SparkSession, tmp_path) -> None:
    # Bronze was written by Delta's streaming sink until 2026-11-30; a crash between its commit and
    # the checkpoint's leaves the batch to replay, and the foreachBatch writer must skip it.
    import subprocess
    import sys

    from medallion.contracts.layout import DataRoot
    from medallion.contracts.scenario_loader import load_scenario
    from spark_jobs import bronze, storage
    from spark_jobs.config import PipelineConfig

    subprocess.run([sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small",
                    "--seed", "4", "--data", str(tmp_path), "--batches", "1", "--quiet"], check=True)
    cfg = PipelineConfig(scenario=load_scenario("driving", profile="small"), data=DataRoot(tmp_path))
    entity = cfg.scenario.entities["companies"]
    path, checkpoint = bronze.ensure_bronze_table(spark, cfg, "companies"), cfg.checkpoint("bronze", "companies")
    old = (storage.read_landing_stream(spark, cfg, "companies").transform(bronze.to_bronze(entity)).writeStream
           .format("delta").option("checkpointLocation", checkpoint).trigger(availableNow=True).start(path))
    old.awaitTermination()
    lines = spark.read.format("delta").load(path).count()
    assert lines > 0 and storage.delta_sink_version(checkpoint, path) == 0
    shutil.rmtree(f"{checkpoint}/commits")  # the crash: batch 0 written, its checkpoint commit lost
    new = bronze.start(spark, cfg, "companies")
    new.awaitTermination()
    assert new.lastProgress["batchId"] == 0  # batch 0 ran again, through the new writer
    assert spark.read.format("delta").load(path).count() == lines


def test_ensure_table_recovers_a_creation_killed_before_its_first_commit(spark: SparkSession, tmp_path) -> None:
    from spark_jobs.storage import ensure_table

    # What a SIGKILL during createIfNotExists can leave: the log folder, no commit in it.
    unborn = tmp_path / "unborn"
    (unborn / "_delta_log" / "_commits").mkdir(parents=True)
    (unborn / "_delta_log" / ".00000000000000000000.json.4f1c.tmp").write_text('{"commitInfo":')
    ensure_table(spark, str(unborn), StructType([StructField("id", IntegerType())]))
    assert DeltaTable.forPath(spark, str(unborn)).toDF().columns == ["id"]

    # A table that has a commit is never touched, whatever its state.
    born = str(tmp_path / "born")
    spark.createDataFrame([(1,), (2,)], "id int").write.format("delta").save(born)
    ensure_table(spark, born, StructType([StructField("id", IntegerType())]))
    assert spark.read.format("delta").load(born).count() == 2


def test_a_table_created_by_another_process_is_seen_after_a_look_at_it_mid_creation(spark: SparkSession, tmp_path) -> None:
    from spark_jobs.storage import read_delta

    made_elsewhere = str(tmp_path / "elsewhere")
    spark.createDataFrame([(1,), (2,), (3,)], "id int").write.format("delta").save(made_elsewhere)
    target = tmp_path / "target"
    (target / "_delta_log").mkdir(parents=True)  # another process has begun creating it
    assert read_delta(spark, str(target)) is None
    DeltaTable.isDeltaTable(spark, str(target))  # any reader in this session caches the empty log
    # Its first commit lands (files appear on disk, as when the other process commits).
    shutil.copytree(made_elsewhere, target, dirs_exist_ok=True)
    table = read_delta(spark, str(target))
    assert table is not None and table.count() == 3


def test_tables_with_many_small_files_are_compacted_and_keep_their_rows(spark: SparkSession, tmp_path) -> None:
    from spark_jobs.storage import append_idempotent, compact_small_files, data_file_count

    many, few = str(tmp_path / "many"), str(tmp_path / "few")
    for version in range(6):
        append_idempotent(spark.createDataFrame([(version,)], "id int"), many, "app", version)
    append_idempotent(spark.createDataFrame([(0,)], "id int"), few, "app", 0)
    assert data_file_count(spark, many) == DeltaTable.forPath(spark, many).detail().first()["numFiles"] == 6

    assert compact_small_files(spark, [many, few, str(tmp_path / "absent")], min_files=6) == [many]
    assert data_file_count(spark, many) == 1
    assert sorted(r.id for r in spark.read.format("delta").load(many).collect()) == list(range(6))
    assert [r["operation"] for r in DeltaTable.forPath(spark, many).history(1).collect()] == ["OPTIMIZE"]
    assert DeltaTable.forPath(spark, few).history(1).first()["operation"] == "WRITE"
    # Without the commit's checksum file the count comes from Delta itself.
    for crc in (tmp_path / "few" / "_delta_log").glob("*.crc"):
        crc.unlink()
    assert data_file_count(spark, few) == 1


def test_session_is_utc_with_delta_and_small_shuffles(spark: SparkSession) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert "DeltaSparkSessionExtension" in spark.conf.get("spark.sql.extensions")
    assert spark.version == "4.2.0"


def test_a_new_stream_reads_an_append_only_table_from_its_log_and_a_compacted_one_from_its_snapshot(
    spark: SparkSession, tmp_path
) -> None:
    from spark_jobs.storage import (
        append,
        compact_small_files,
        has_only_appends,
        read_delta_stream,
        start_batches,
    )

    path = str(tmp_path / "t")
    for start in range(0, 30, 10):
        append(spark.range(start, start + 10).withColumnRenamed("id", "n"), path)

    def streamed(name: str) -> list[int]:
        seen: list[int] = []
        checkpoint = str(tmp_path / f"checkpoint-{name}")
        start_batches(read_delta_stream(spark, path), name, checkpoint,
                      lambda df, _: seen.extend(r.n for r in df.collect())).awaitTermination()
        return sorted(seen)

    assert has_only_appends(path)
    assert streamed("log") == list(range(30))
    compact_small_files(spark, [path], min_files=2)
    append(spark.range(30, 35).withColumnRenamed("id", "n"), path)
    assert not has_only_appends(path)  # the compacted files are removed: back to the snapshot
    assert streamed("snapshot") == list(range(35))
