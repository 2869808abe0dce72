"""The command line's contract: help on every option, no prefix matching, clear errors for
unknown names, versions without a JVM, every environment variable documented.

No Spark: each check stops before a session would start.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medallion import cli
from medallion.bench import GROUPS
from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario_base import BUILT_IN_SCENARIO_DIR, SCENARIO_DIR
from medallion.contracts.scenario_loader import resolve_scenario_path

ROOT = Path(__file__).resolve().parents[2]


def walk(parser: argparse.ArgumentParser, path: str = "medallion") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += walk(sub, f"{path} {name}")
    return found


def test_every_option_of_every_command_has_help() -> None:
    parsers = walk(cli.build_parser())
    assert len(parsers) > 10  # the walk found the subcommands
    missing = [f"{path} {action.option_strings[-1]}"
               for path, parser in parsers for action in parser._actions
               if action.option_strings and "-h" not in action.option_strings and not (action.help or "").strip()]
    assert missing == []


def test_no_parser_matches_option_prefixes() -> None:
    assert all(not parser.allow_abbrev for _, parser in walk(cli.build_parser()))


@pytest.mark.parametrize("argv", [
    ["demo", "--batch", "1"],
    ["generate", "--scenario", "driving", "--data", "d", "--seed", "1", "--batch", "1"],
    ["pipeline", "--scenario", "driving", "--data", "d", "--cont"],
])
def test_an_abbreviated_option_is_refused(argv: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capfd.readouterr().err


def test_bench_only_lists_its_groups(capfd: pytest.CaptureFixture[str]) -> None:
    assert cli.BENCH_GROUPS == GROUPS  # the parser's copy matches the groups bench runs
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    help_text = " ".join(capfd.readouterr().out.split())
    assert f"benchmark groups: {', '.join(GROUPS)}" in help_text
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "--only", "generator,nosuch"])
    assert exit_.value.code == 2
    err = capfd.readouterr().err
    assert "argument --only" in err and "'nosuch'" in err and f"available: {', '.join(GROUPS)}" in err
    args = cli.build_parser().parse_args(["bench", "--only", "pipeline, export"])
    assert args.only == ["pipeline", "export"]


def test_an_unknown_scenario_name_lists_the_available_ones(capfd: pytest.CaptureFixture[str]) -> None:
    available = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    assert "driving" in available
    code = cli.main(["schema", "--scenario", "drivng"])
    assert code == ConfigError.exit_code
    err = capfd.readouterr().err
    assert f"error: no scenario named drivng; available: {', '.join(available)}" in err
    assert "invalid configuration" not in err
    with pytest.raises(ConfigError):  # the error type callers catch is unchanged
        resolve_scenario_path("drivng")


def test_a_missing_scenario_file_is_named_as_a_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["schema", "--scenario", str(tmp_path / "gone.yaml")])
    assert code == ConfigError.exit_code
    err = capfd.readouterr().err
    assert "gone.yaml" in err and "no such file" in err


def test_scenario_dir_overrides_the_built_ins(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text((BUILT_IN_SCENARIO_DIR / "driving.yaml").read_text(encoding="utf-8"))
    code = "from medallion.contracts.scenario_loader import resolve_scenario_path as r; print(r('mine'))"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                           "MEDALLION_SCENARIO_DIR": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tmp_path / "mine.yaml")


def test_the_checkout_configs_folder_still_holds_the_built_ins() -> None:
    # Paths like configs/scenarios/driving.yaml in the README and the spark-submit examples.
    assert (ROOT / "configs" / "scenarios" / "driving.yaml").read_bytes() == (BUILT_IN_SCENARIO_DIR / "driving.yaml").read_bytes()


def test_version_names_spark_delta_and_java_without_a_jvm() -> None:
    from importlib.metadata import version

    result = subprocess.run([sys.executable, "-m", "medallion.cli", "--version"], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("medallion ")
    assert f"Spark {version('pyspark')} (pyspark)" in lines
    assert f"Delta {version('delta-spark')} (delta-spark)" in lines
    java = subprocess.run(["java", "-version"], capture_output=True, text=True)
    expected = re.search(r'version "([^"]+)"', java.stderr)
    assert expected is not None
    assert f"Java {expected[1]}" in lines


def test_version_tolerates_a_machine_without_java(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}  # no java on PATH, no JAVA_HOME
    result = subprocess.run([sys.executable, "-m", "medallion.cli", "--version"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Java not found" in result.stdout


def test_every_environment_variable_the_code_reads_is_in_the_readme() -> None:
    pattern = re.compile(r"MEDALLION_[A-Z_]+")
    names: set[str] = set()
    for folder in ("medallion", "generators", "spark_jobs", "scripts", "docker"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                names |= set(pattern.findall(path.read_text(encoding="utf-8", errors="replace")))
    assert {"MEDALLION_SCENARIO_DIR", "MEDALLION_PG_BIN", "MEDALLION_SPARK_MASTER"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(name for name in names if name not in readme) == []


def complete(words: list[str]) -> list[str]:
    """What bash offers after `words` (the last one is the word being typed), using the script
    `medallion completion bash` prints, in a real bash."""
    script = subprocess.run([sys.executable, "-m", "medallion.cli", "completion", "bash"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    line = " ".join(["medallion", *words])
    program = (f"{script}\nCOMP_WORDS=(medallion {' '.join(map(repr, words))}); COMP_CWORD={len(words)}; "
               f"COMP_LINE={line!r}; _medallion; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_bash_completion_offers_commands_options_and_values() -> None:
    assert {"generate", "pipeline", "bench", "completion"} <= set(complete([""]))
    assert complete(["pip"]) == ["pipeline"]
    assert set(complete(["pipeline", "--"])) >= {"--scenario", "--data", "--conf", "--log-level", "--continuous"}
    assert complete(["pipeline", "--scenario", "dr"]) == ["driving"]
    assert complete(["export", "--scenario", "driving", "--target", ""]) == ["postgres", "mysql", "all"]
    assert complete(["verify", "--log-level", "W"]) == ["WARN"]
    assert complete(["bench", "--only", ""]) == list(GROUPS)
