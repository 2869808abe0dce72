"""The notebooks, executed top to bottom with nbclient on a kernel from this venv's Python.

Each runs in a temporary working directory with `MEDALLION_NOTEBOOK_DATA` pointing into it (as
the compose file's `jupyter` service points it at /data/notebooks), and the tests read what the
cells printed and drew. The committed files must carry no outputs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "medallion-test-venv"


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_are_committed_clean_and_parameterised() -> None:
    names = [p.name for p in notebook_paths()]
    assert names == ["01_quickstart.ipynb", "02_defects_and_quality.ipynb"]
    for path in notebook_paths():
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code), f"{path.name} has outputs"
        assert "parameters" in code[0].metadata.get("tags", []), "the first code cell holds the parameters"
        assert "MEDALLION_NOTEBOOK_DATA" in code[0].source
        source = "\n".join(cell.source for cell in code)
        assert 'master="local[2]"' in source and "shuffle_partitions=2" in source


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running this venv's interpreter, found through JUPYTER_PATH only."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "medallion (test)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL


def execute(name: str, kernel: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int, Path]:
    """Run a notebook; return all its text output, the number of images drawn, and its data root."""
    data_root = workdir / "notebook-data"
    monkeypatch.setenv("MEDALLION_NOTEBOOK_DATA", str(data_root))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, kernel_name=kernel, timeout=1200, resources={"metadata": {"path": str(workdir)}})
    client.execute()
    texts, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                texts.append(output.data.get("text/plain", ""))
                images += "image/png" in output.data
    return "\n".join(texts), images, data_root


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.slow
def test_quickstart_notebook(kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, images, data_root = execute("01_quickstart.ipynb", kernel, tmp_path, monkeypatch)
    assert re.search(r"^all \d+ checks hold$", text, re.MULTILINE), text[-3000:]
    assert int(re.search(r"gold\.company_activity_15m: ([\d,]+) windows", text)[1].replace(",", "")) > 0
    silver = re.search(r"^driver_events\s+bronze\s+([\d,]+)\s+silver\s+([\d,]+)\s+quarantine\s+([\d,]+)", text, re.MULTILINE)
    bronze_rows, silver_rows, quarantined = (int(g.replace(",", "")) for g in silver.groups())
    assert 0 < silver_rows < bronze_rows and quarantined > 0
    assert "pipeline: bronze" in text and "gold" in text
    assert images == 1
    # It wrote where the environment told it to.
    assert (data_root / "quickstart" / "lake" / "silver" / "driver_events" / "_delta_log").is_dir()


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.slow
def test_defects_and_quality_notebook(kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, images, data_root = execute("02_defects_and_quality.ipynb", kernel, tmp_path, monkeypatch)
    assert "every ledgered kind has its expected fate: True" in text, text[-4000:]
    assert "bronze = silver + quarantine + duplicates + dropped for every batch: True" in text
    shown = set(re.findall(r"^=== (\w+(?: \(\w+\))?) -> (\w+)", text, re.MULTILINE))
    for kind in ("malformed_json", "null_required", "wrong_type", "out_of_range", "orphan_fk",
                 "schema_drift (rename)", "schema_drift (retype)"):
        assert (kind, "quarantine") in shown, kind
    assert {("duplicate", "dedupe"), ("late", "keep"), ("out_of_order", "keep"), ("schema_drift (add)", "keep")} <= shown
    # Every quarantined example names the rules it broke.
    reasons = re.findall(r"quarantine: \{.*'_reasons': \[([^\]]*)\]", text)
    assert len(reasons) >= 7 and all(r.strip() for r in reasons)
    assert "NOT FOUND" not in text
    assert images == 1
    assert (data_root / "defects" / "lake" / "quality" / "_delta_log").is_dir()
