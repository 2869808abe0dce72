"""Local run harnesses for the demo and the tests: throwaway database servers, a standalone
Spark cluster on this machine, free loopback ports. Nothing in `generators`, `spark_jobs` or
`medallion.databases` imports this package.

- `PostgresServer`, `MariaDBServer`: throwaway servers (context managers or start()/stop()).
- `open_connections`: a configured server per export target, else a throwaway one.
- `find_postgres`, `find_mariadb`: locate the OS-packaged binaries.
"""

from __future__ import annotations

from medallion.local.binaries import find_mariadb, find_postgres
from medallion.local.connections import open_connections
from medallion.local.ports import free_port
from medallion.local.throwaway_servers import (
    DatabaseServer,
    MariaDBServer,
    PostgresServer,
    start_server,
)

__all__ = [
    "DatabaseServer",
    "MariaDBServer",
    "PostgresServer",
    "find_mariadb",
    "find_postgres",
    "free_port",
    "open_connections",
    "start_server",
]
