"""`medallion package`: the project as one zip for `spark-submit --py-files`."""

from __future__ import annotations

import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("medallion", "generators", "spark_jobs")


def build_pyfiles_zip(out: Path) -> Path:
    """Zip the project's packages (sources and package data, no caches) into `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for path in sorted((PROJECT_ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    archive.write(path, path.relative_to(PROJECT_ROOT).as_posix())
    tmp.replace(out)
    return out


def package(out: Path) -> Path:
    """`medallion package`: build the zip and print the spark-submit line that uses it."""
    out = build_pyfiles_zip(Path(out))
    from spark_jobs.jars import jar_paths

    jars = ",".join(str(p) for p in jar_paths())
    print(f"wrote {out}")
    print(f"spark-submit --jars {jars} --py-files {out} spark_jobs/bronze.py --scenario driving --data DIR")
    return out
