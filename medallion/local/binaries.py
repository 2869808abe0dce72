"""Find the PostgreSQL and MariaDB server programs installed by the OS packages.

medallion never starts the packaged services: it runs the server binaries itself in a
temporary directory (see `medallion.local.throwaway_servers`). This module only locates them and,
when they are missing, says which OS package to install.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from medallion.contracts.errors import SetupError

# Debian/Ubuntu keep each major version apart; Fedora/Homebrew put the programs on PATH.
_PG_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin")
# mariadbd lives in sbin on Debian and in libexec on Fedora.
_MARIADB_DIRS = ("/usr/sbin", "/usr/libexec", "/usr/bin", "/usr/local/bin", "/usr/local/sbin")


@dataclass(frozen=True)
class PostgresBinaries:
    """The two PostgreSQL programs a throwaway server needs."""

    initdb: Path
    postgres: Path

    @property
    def bin_dir(self) -> Path:
        return self.postgres.parent


@dataclass(frozen=True)
class MariaDBBinaries:
    """The MariaDB server and the script that creates its system tables."""

    mariadbd: Path
    install_db: Path


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", str(path))) or (0,)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_postgres() -> PostgresBinaries:
    """Locate `initdb` and `postgres`: `$MEDALLION_PG_BIN`, the newest packaged major, or PATH.

    Returns:
        The binaries of one PostgreSQL installation (both from the same directory).

    Raises:
        SetupError: no PostgreSQL server is installed; the message names the OS package.
    """
    candidates: list[Path] = []
    configured = os.environ.get("MEDALLION_PG_BIN")
    if configured:
        # An explicit choice is never silently replaced by another installation.
        folder = Path(configured).expanduser()
        if _executable(folder / "initdb") and _executable(folder / "postgres"):
            return PostgresBinaries(initdb=folder / "initdb", postgres=folder / "postgres")
        raise SetupError(
            f"$MEDALLION_PG_BIN={configured} has no executable initdb and postgres: point it at "
            "the bin folder of a PostgreSQL installation (e.g. /usr/lib/postgresql/15/bin) or unset it"
        )
    for pattern in _PG_GLOBS:
        root = Path("/")
        candidates += sorted(root.glob(pattern.lstrip("/")), key=_version_key, reverse=True)
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        initdb, postgres = folder / "initdb", folder / "postgres"
        if _executable(initdb) and _executable(postgres):
            return PostgresBinaries(initdb=initdb, postgres=postgres)
    raise SetupError(
        "PostgreSQL server binaries (initdb, postgres) not found: install the OS package `postgresql` (Debian/Ubuntu: apt-get install postgresql; "
        "scripts/setup.sh does it), or set MEDALLION_PG_BIN to the folder holding them"
    )


def find_mariadb() -> MariaDBBinaries:
    """Locate `mariadbd` and `mariadb-install-db` (the `mysqld`/`mysql_install_db` aliases too).

    Returns:
        The MariaDB server binary and its install script.

    Raises:
        SetupError: MariaDB is not installed; the message names the OS packages.
    """
    search = os.pathsep.join([os.environ.get("PATH", ""), *_MARIADB_DIRS])
    server = shutil.which("mariadbd", path=search) or shutil.which("mysqld", path=search)
    install = shutil.which("mariadb-install-db", path=search) or shutil.which(
        "mysql_install_db", path=search
    )
    if server and install:
        return MariaDBBinaries(mariadbd=Path(server), install_db=Path(install))
    missing = "mariadbd" if not server else "mariadb-install-db"
    raise SetupError(
        f"MariaDB server binaries not found ({missing} is missing): install the OS packages "
        "`mariadb-server-core` and `mariadb-client` (Debian/Ubuntu: apt-get install "
        "mariadb-server-core mariadb-client; scripts/setup.sh does it)"
    )
