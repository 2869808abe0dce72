"""`medallion setup`: resolve the jars and check the tools Spark and the databases need.

OS packages themselves are installed by scripts/setup.sh (it may need root); this module only
checks for them, so the error says exactly what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from medallion.contracts.errors import SetupError
from spark_jobs.jars import jars_dir, missing_jars, resolve_jars


def java_version() -> str | None:
    """The version `java -version` reports (e.g. 17.0.15), or None when there is no java.

    Spark runs $JAVA_HOME/bin/java when JAVA_HOME is set, else `java` on PATH; so does this.
    """
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if java is None:
        return None
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "([^"]+)"', result.stderr + result.stdout)
    return match[1] if match else None


def java_major() -> int | None:
    """The major version of `java` on PATH (or $JAVA_HOME), or None when there is none."""
    version = java_version()
    if version is None:
        return None
    # "1.8.0_392" is Java 8; "17.0.15" is 17.
    parts = version.split(".")
    match = re.match(r"\d+", parts[1] if parts[0] == "1" and len(parts) > 1 else parts[0])
    return int(match[0]) if match else None


def versions_text() -> str:
    """What `medallion --version` prints: medallion, PySpark, delta-spark and Java, one per line.

    Read from the installed packages' metadata and `java -version`: no JVM session is started.
    """
    from importlib.metadata import PackageNotFoundError, version

    from medallion.contracts.version import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    java = java_version()
    return "\n".join([
        f"medallion {__version__}",
        f"Spark {installed('pyspark')} (pyspark)",
        f"Delta {installed('delta-spark')} (delta-spark)",
        f"Java {java}" if java else "Java not found (install a JDK 17+ or set JAVA_HOME)",
    ])


def check_tools() -> list[str]:
    """Problems with the machine's tools, each with its fix; empty when all is well."""
    from medallion.local.binaries import find_mariadb, find_postgres

    problems = []
    major = java_major()
    if major is None:
        problems.append("no `java` on PATH: install a JDK 17+ (e.g. openjdk-17-jre-headless)")
    elif major < 17:
        problems.append(f"java {major} is too old for Spark 4: install JDK 17 or newer")
    for name, finder, package in (
        ("PostgreSQL", find_postgres, "postgresql"),
        ("MariaDB", find_mariadb, "mariadb-server-core"),
    ):
        try:
            finder()
        except SetupError:
            problems.append(f"no {name} server binaries: install the OS package {package} (scripts/setup.sh does)")
    return problems


def setup(check: bool = False, jars_only: bool = False) -> int:
    """`medallion setup`: fetch missing jars (unless `check`) and report what else is missing;
    returns the exit code (3 when something is missing)."""
    missing = missing_jars()
    if check:
        for artifact in missing:
            print(f"missing jar: {artifact.coordinate}")
    elif missing:
        print(f"[setup] resolving {len(missing)} jar(s) into {jars_dir()}")
        resolve_jars()
    if jars_only:
        print(f"[setup] jars ready in {jars_dir()}")
        return 0
    problems = check_tools()
    for problem in problems:
        print(f"[setup] {problem}")
    if problems or (check and missing):
        return 3
    print(f"[setup] ready: jars in {jars_dir()}, java {java_major()}, PostgreSQL and MariaDB found")
    return 0
