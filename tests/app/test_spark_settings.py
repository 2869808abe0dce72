"""`--conf` and `--log-level`: the user's settings, spark-submit's and medallion's defaults.

Precedence, highest first: the command's own `--conf KEY=VALUE`; what spark-submit was given
(`spark-submit --conf`); medallion's defaults (spark_jobs/session.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medallion import cli
from medallion.contracts.options import spark_settings
from spark_jobs.jars import jar_paths
from spark_jobs.session import SessionOptions, options_from_args, session_config

ROOT = Path(__file__).resolve().parents[2]

SPARK_COMMANDS = ("pipeline", "reprocess", "export", "verify", "demo", "bench")  # `report` starts no JVM


def parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(argv)


def test_conf_is_parsed_repeatable_and_last_wins() -> None:
    args = parse(["pipeline", "--scenario", "driving", "--data", "d", "--conf", "spark.sql.shuffle.partitions=9",
                  "--conf", "spark.a=x=y", "--conf", "spark.sql.shuffle.partitions=11", "--conf", "spark.empty=",
                  "--log-level", "warn"])
    assert spark_settings(args) == {"spark.sql.shuffle.partitions": "11", "spark.a": "x=y", "spark.empty": ""}
    options = options_from_args("medallion-pipeline", args)
    assert options.log_level == "WARN" and options.extra["spark.a"] == "x=y"
    # Without the options the project's defaults stand.
    plain = options_from_args("x", parse(["verify", "--scenario", "driving", "--data", "d"]))
    assert plain.log_level == SessionOptions.log_level and plain.extra == {}


@pytest.mark.parametrize("command", SPARK_COMMANDS)
def test_every_spark_command_takes_conf_and_log_level(command: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capfd.readouterr().out
    assert "--conf KEY=VALUE" in out and "--log-level" in out and "WARN" in out


@pytest.mark.parametrize("bad", ["spark.sql.shuffle.partitions", "=5"])
def test_a_conf_without_key_and_value_is_refused_naming_the_option(bad: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--scenario", "driving", "--data", "d", "--conf", bad])
    assert exit_.value.code == 2
    err = capfd.readouterr().err
    assert "argument --conf" in err and "KEY=VALUE" in err


def test_a_log_level_spark_does_not_know_is_refused(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["verify", "--scenario", "driving", "--data", "d", "--log-level", "LOUD"])
    assert "argument --log-level" in capfd.readouterr().err


def test_session_config_keeps_what_the_user_and_spark_submit_set() -> None:
    defaults = session_config(SessionOptions(), with_jars=False)
    assert defaults["spark.sql.shuffle.partitions"] == "4" and defaults["spark.ui.enabled"] == "false"
    preset = {"spark.sql.shuffle.partitions": "7", "spark.ui.enabled": "true"}
    submitted = session_config(SessionOptions(), with_jars=False, preset=preset)
    # A key spark-submit set is not passed at all (the builder would override the JVM's value).
    assert "spark.sql.shuffle.partitions" not in submitted and "spark.ui.enabled" not in submitted
    assert submitted["spark.sql.session.timeZone"] == "UTC"  # defaults the operator left alone stay
    mine = session_config(SessionOptions(extra={"spark.sql.shuffle.partitions": "3"}), with_jars=False, preset=preset)
    assert mine["spark.sql.shuffle.partitions"] == "3"  # the command's own --conf wins over both


PROBE = """
import json
import argparse
from medallion.contracts.options import add_spark_options
from spark_jobs.session import build_session, options_from_args

parser = argparse.ArgumentParser()
add_spark_options(parser)
spark = build_session(options_from_args("conf-probe", parser.parse_args()))
keys = ["spark.sql.shuffle.partitions", "spark.databricks.delta.snapshotPartitions",
        "spark.sql.session.timeZone", "spark.sql.extensions", "spark.default.parallelism"]
print("CONF " + json.dumps({key: spark.conf.get(key, None) for key in keys}), flush=True)
print("LEVEL " + spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getRootLogger().getLevel().toString())
spark.stop()
"""


@pytest.mark.spark
def test_spark_submit_conf_wins_over_the_defaults(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    submit = str(Path(sys.executable).parent / "spark-submit")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    result = subprocess.run(
        [submit, "--master", "local[1]", "--jars", ",".join(map(str, jar_paths())),
         "--conf", "spark.sql.shuffle.partitions=7", "--conf", "spark.databricks.delta.snapshotPartitions=5",
         "--conf", "spark.ui.enabled=false", "--driver-memory", "512m",
         str(probe), "--conf", "spark.databricks.delta.snapshotPartitions=3", "--log-level", "WARN"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("CONF "))
    conf = json.loads(line.removeprefix("CONF "))
    assert conf["spark.sql.shuffle.partitions"] == "7"  # spark-submit's value, not medallion's 4
    assert conf["spark.databricks.delta.snapshotPartitions"] == "3"  # the job's own --conf beats spark-submit's
    # Defaults nobody set still apply.
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.default.parallelism"] == "4"
    assert "LEVEL WARN" in result.stdout
