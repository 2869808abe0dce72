"""The JVM jars Spark needs beside pyspark: Delta Lake and the two JDBC drivers.

They are resolved from Maven Central once, checked against pinned SHA-1 sums, and kept in a
local folder (`.jars/` in the checkout, or `$MEDALLION_JARS_DIR`). Every SparkSession, every
`spark-submit` and the standalone cluster use that same folder, so runs work offline afterwards.

The list is a lock file: delta-spark's transitive Maven dependencies (delta-kernel, parquet,
jackson, hadoop...) are already inside pyspark at newer versions, and only delta-storage is
needed beside delta-spark itself (proven by tests/spark_jobs/test_delta.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from medallion.contracts.errors import SetupError

SPARK_VERSION = "4.2.0"
SCALA_BINARY = "2.13"
DELTA_VERSION = "4.4.0"

DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Artifact:
    """One pinned Maven artifact and the SHA-1 Maven Central publishes for it."""

    group: str
    name: str
    version: str
    sha1: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.group}_{self.name}-{self.version}.jar"

    def url(self, repository: str) -> str:
        group_path = self.group.replace(".", "/")
        return f"{repository}/{group_path}/{self.name}/{self.version}/{self.name}-{self.version}.jar"


_SPARK_MINOR = ".".join(SPARK_VERSION.split(".")[:2])
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("io.delta", f"delta-spark_{_SPARK_MINOR}_{SCALA_BINARY}", DELTA_VERSION,
             "c2ab26421b8de44a2161b5e0b7da7954049f1ca1"),
    Artifact("io.delta", "delta-storage", DELTA_VERSION, "a068e489ce20d7f79bc4ca2d3392f12adbb69ddd"),
    Artifact("org.postgresql", "postgresql", "42.7.14", "0e7c94ce80cb1dd9875ff44ffe6a40a8aaa3eefd"),
    Artifact("com.mysql", "mysql-connector-j", "9.7.0", "4e6e3e8765e4a9d0609744b3e8fe75afe1b98cba"),
)


def jars_dir() -> Path:
    """Where the jars live: `$MEDALLION_JARS_DIR`, else `.jars/` beside the project."""
    configured = os.environ.get("MEDALLION_JARS_DIR")
    return Path(configured).expanduser().resolve() if configured else PROJECT_ROOT / ".jars"


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_jars(folder: Path | None = None) -> list[Artifact]:
    """Artifacts not yet in the folder (presence only; contents were checked on download)."""
    folder = folder or jars_dir()
    return [a for a in ARTIFACTS if not (folder / a.file_name).is_file()]


def resolve_jars(folder: Path | None = None, log: bool = True) -> list[Path]:
    """Download missing jars, verify their SHA-1 and return every jar path. Idempotent."""
    folder = folder or jars_dir()
    folder.mkdir(parents=True, exist_ok=True)
    repository = os.environ.get("MEDALLION_MAVEN_REPO", DEFAULT_REPOSITORY).rstrip("/")
    for artifact in missing_jars(folder):
        target = folder / artifact.file_name
        if log:
            print(f"  fetching {artifact.coordinate}", flush=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".jar", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                artifact.url(repository), timeout=120
            ) as response:
                shutil.copyfileobj(response, out)
            actual = _sha1(tmp)
            if actual != artifact.sha1:
                raise SetupError(
                    f"{artifact.coordinate}: SHA-1 {actual} does not match the pinned "
                    f"{artifact.sha1}; the download is corrupt or the repository serves another file"
                )
            # mkstemp makes the file owner-only; a jar is public, and a Spark driver running as
            # another user (the Docker images' `medallion`) must read it to serve executors.
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except (urllib.error.URLError, OSError) as exc:
            raise SetupError(
                f"could not download {artifact.coordinate} from the Maven repository "
                f"({exc}); check the network or set MEDALLION_MAVEN_REPO to a mirror"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
    return jar_paths(folder)


def jar_paths(folder: Path | None = None) -> list[Path]:
    """The jar files Spark must load, in a stable order; SetupError if any is missing."""
    folder = folder or jars_dir()
    missing = missing_jars(folder)
    if missing:
        names = ", ".join(a.coordinate for a in missing)
        raise SetupError(
            f"missing jars in {folder}: {names}. Run `medallion setup` (or `make setup`) once "
            "with network access to fetch them."
        )
    return [folder / a.file_name for a in ARTIFACTS]
