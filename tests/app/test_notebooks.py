"""The notebooks, executed top to bottom with nbclient on a kernel from this venv's Python.

Both run, one after the other, on one kernel started in a temporary working directory with
`MEDALLION_NOTEBOOK_DATA` pointing into it (as the compose file's `jupyter` service points it at
/data/notebooks, and as a JupyterLab user would run them): each notebook builds and stops its own
Spark session, but the second skips the kernel's and the JVM's start-up. The tests read what the
cells printed and drew. The committed files must carry no outputs.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
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
        # local[2] on a laptop; the compose file's JupyterLab sets MEDALLION_SPARK_MASTER (the cluster).
        assert 'master=os.environ.get("MEDALLION_SPARK_MASTER", "local[2]")' in source and "shuffle_partitions=2" in source


@dataclass(frozen=True)
class Kernel:
    """A running kernel and the folders it works in."""

    manager: AsyncKernelManager
    workdir: Path
    data_root: Path


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    """One kernel of this venv's interpreter (its spec found through JUPYTER_PATH only) for
    both notebooks; they write into different folders of one data root."""
    root = tmp_path_factory.mktemp("notebooks")
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "medallion (test)", "language": "python"}))
    workdir, data_root = root / "work", root / "work" / "notebook-data"
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root / "jupyter"))
        patch.setenv("MEDALLION_NOTEBOOK_DATA", str(data_root))
        manager = AsyncKernelManager(kernel_name=KERNEL)
        run_sync(manager.start_kernel)(cwd=str(workdir))
    try:
        yield Kernel(manager, workdir, data_root)
    finally:
        run_sync(manager.shutdown_kernel)(now=True)


# Appended to each notebook: measures the figure it drew (`fig`), as a reader would see it.
FIGURE_PROBE = """
import json as _json
from matplotlib.backends.backend_agg import FigureCanvasAgg as _Agg

_Agg(fig)  # plt.show() closed the figure; draw it again as the inline backend did
fig.canvas.draw()
_renderer = fig.canvas.get_renderer()
_axes = fig.axes
_report = {"figure": list(fig.bbox.extents), "axes": []}
for _ax in _axes:
    _legend = _ax.get_legend()
    _box = _legend.get_window_extent(_renderer) if _legend else None
    _points = [tuple(p) for line in _ax.get_lines() for p in line.get_transform().transform(line.get_xydata())]
    _points += [tuple(c) for patch in _ax.patches for c in patch.get_window_extent(_renderer).corners()]
    _report["axes"].append({
        "xlabel": _ax.get_xlabel(), "ylabel": _ax.get_ylabel(),
        "xticks": [float(t) for t in _ax.get_xticks()],
        "xlim": list(_ax.get_xlim()),
        "legend": list(_box.extents) if _box is not None else None,
        "legend_over_data": sum(1 for x, y in _points if _box is not None and _box.contains(x, y)),
        "legend_over_axes": [i for i, other in enumerate(_axes) if _box is not None and _box.overlaps(other.bbox)],
    })
print("FIGURE " + _json.dumps(_report))
"""


def check_figure(text: str) -> None:
    """Labelled axes, one integer tick per batch, legends clear of every plot and inside the figure."""
    report = json.loads(re.search(r"^FIGURE (.*)$", text, re.MULTILINE)[1])
    left, bottom, right, top = report["figure"]
    for axes in report["axes"]:
        assert axes["xlabel"] and axes["ylabel"], axes
        assert axes["legend"] is not None, axes
        assert axes["legend_over_data"] == 0 and axes["legend_over_axes"] == [], axes
        x0, y0, x1, y1 = axes["legend"]
        assert left <= x0 and x1 <= right and bottom <= y0 and y1 <= top, "the legend is cut off"
        if axes["xlabel"] == "batch":
            ticks = [t for t in axes["xticks"] if axes["xlim"][0] <= t <= axes["xlim"][1]]
            assert ticks and all(t == int(t) for t in ticks), ticks
            assert ticks == list(range(int(ticks[0]), int(ticks[-1]) + 1)), "one tick per batch"


def execute(name: str, kernel: Kernel) -> tuple[str, int]:
    """Run a notebook on the shared kernel; return all its text output and the number of images drawn."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(FIGURE_PROBE))
    client = NotebookClient(notebook, km=kernel.manager, timeout=1200, resources={"metadata": {"path": str(kernel.workdir)}})
    client.execute()
    texts, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                texts.append(output.data.get("text/plain", ""))
                images += "image/png" in output.data
    return "\n".join(texts), images


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.slow
def test_quickstart_notebook(kernel: Kernel) -> None:
    text, images = execute("01_quickstart.ipynb", kernel)
    assert re.search(r"^all \d+ checks hold$", text, re.MULTILINE), text[-3000:]
    assert int(re.search(r"gold\.company_activity_15m: ([\d,]+) windows", text)[1].replace(",", "")) > 0
    silver = re.search(r"^driver_events\s+bronze\s+([\d,]+)\s+silver\s+([\d,]+)\s+quarantine\s+([\d,]+)", text, re.MULTILINE)
    bronze_rows, silver_rows, quarantined = (int(g.replace(",", "")) for g in silver.groups())
    assert 0 < silver_rows < bronze_rows and quarantined > 0
    assert "pipeline: bronze" in text and "gold" in text
    assert images == 1
    check_figure(text)
    # It wrote where the environment told it to.
    assert (kernel.data_root / "quickstart" / "lake" / "silver" / "driver_events" / "_delta_log").is_dir()


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.slow
def test_defects_and_quality_notebook(kernel: Kernel) -> None:
    text, images = execute("02_defects_and_quality.ipynb", kernel)
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
    check_figure(text)
    assert (kernel.data_root / "defects" / "lake" / "quality" / "_delta_log").is_dir()
