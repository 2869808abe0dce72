"""Connections for local runs and tests: a configured server where there is one, else a throwaway one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack

from medallion.contracts.scenario import Export
from medallion.databases.connection import Connection
from medallion.databases.targets import configured_connection
from medallion.local.throwaway_servers import SERVERS


def open_connections(
    export: Export,
    kinds: Iterable[str],
    stack: ExitStack,
    *,
    verbose: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Connection]:
    """Connections for the given kinds, starting a throwaway server where none is configured.

    Each throwaway server gets the target's database and user names and is stopped when
    `stack` closes (also on an exception inside the `with ExitStack()` block).

    Args:
        export: the scenario's export section.
        kinds: target kinds, e.g. `("postgres", "mysql")`.
        stack: owns the servers' lifetime.
        verbose: let the servers print one line on start and stop.
        environ: environment to read (default `os.environ`).
    """
    connections: dict[str, Connection] = {}
    for kind in kinds:
        target, connection = configured_connection(export, kind, environ)
        if connection is None:
            server = SERVERS[kind](database=target.database, user=target.user, verbose=verbose)
            stack.enter_context(server)
            connection = server.connection
        connections[kind] = connection
    return connections
