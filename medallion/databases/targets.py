"""Which configured server each export target uses.

`resolve_connections` is for `medallion export` (the target must outlive the command, so it
must be configured). `medallion.local.connections.open_connections` is its counterpart for the
demo and the tests: it starts a throwaway server for every target without a configured URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from medallion.contracts.errors import ConfigError
from medallion.contracts.scenario import DatabaseTarget, Export
from medallion.databases.connection import KINDS, Connection, Kind, env_prefix, external_connection


def target_of(export: Export, kind: str) -> DatabaseTarget:
    """The scenario's `export.postgres` or `export.mysql` section."""
    if kind not in KINDS:
        raise ConfigError("--target", [f"unknown target {kind!r}; use postgres, mysql or all"])
    target: DatabaseTarget = getattr(export, kind)
    return target


def configured_connection(
    export: Export, kind: str, environ: Mapping[str, str] | None = None
) -> tuple[DatabaseTarget, Connection | None]:
    """The scenario's section for `kind` and its configured server (None when none is configured)."""
    target = target_of(export, kind)
    return target, external_connection(kind_of(kind), target, os.environ if environ is None else environ)


def resolve_connections(
    export: Export,
    kinds: Iterable[str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Connection]:
    """External connections for the given target kinds; every one must be configured.

    Args:
        export: the scenario's export section.
        kinds: target kinds, e.g. `("postgres", "mysql")`.
        environ: environment to read (default `os.environ`).

    Raises:
        ConfigError: a target has no URL, or its password variable is unset.
    """
    connections: dict[str, Connection] = {}
    for kind in kinds:
        target, connection = configured_connection(export, kind, environ)
        if connection is None:
            prefix = env_prefix(kind)
            raise ConfigError(
                f"export.{kind}",
                [f"no {kind} server to export to: set {prefix}_URL (e.g. "
                 f"{'postgresql' if kind == 'postgres' else 'mysql'}://127.0.0.1:PORT/DB), "
                 f"optionally {prefix}_USER, and the password in ${target.password_env}; or set "
                 f"export.{kind}.url in the scenario. `medallion demo` starts throwaway servers itself."],
            )
        connections[kind] = connection
    return connections


def kind_of(kind: str) -> Kind:
    return "postgres" if kind == "postgres" else "mysql"
