"""The built wheel carries the built-in scenarios: `--scenario driving` works from a plain
(non-editable) install, outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from medallion.contracts.scenario_base import BUILT_IN_SCENARIO_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_scenarios_and_resolves_them_when_installed(tmp_path: Path) -> None:
    # Build from a copy, so the checkout gets no build/ or *.egg-info folders.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("medallion", "generators", "spark_jobs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    # With build isolation: pip installs the build backend pyproject.toml names.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(wheels)],
                   check=True, timeout=600)
    (wheel,) = wheels.glob("medallion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"medallion/contracts/scenarios/{p.name}" for p in BUILT_IN_SCENARIO_DIR.glob("*.yaml")}
    assert {"medallion/contracts/scenarios/driving.yaml"} <= expected <= names

    # A throwaway venv holding only the wheel; the dependencies come from this venv's
    # site-packages through a .pth line (a plain path entry: its editable install stays off).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDALLION_SCENARIO_DIR")}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run([python, "-c", "import medallion; print(medallion.__file__)"], cwd=outside, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv))  # the wheel's copy, not the checkout
    result = subprocess.run([venv / "bin" / "medallion", "schema", "--scenario", "driving"], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "driving: valid" in result.stderr  # the schema goes to stdout, the verdict to stderr
