"""Connection details for an export target, with a password that never shows.

A `Connection` says where a database is and who logs in. Its password is a `Secret`: it only
comes from an environment variable (external servers) or is generated in-process (throwaway
servers), and it is kept out of `repr`/`str`, the JDBC URL, logs and error messages. Spark and
the drivers receive it as a separate property, because Spark's redaction does not cover
passwords inside JDBC URLs.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from medallion.contracts.errors import ConfigError
from medallion.contracts.options import EXPORT_KINDS as KINDS
from medallion.contracts.options import ExportKind as Kind
from medallion.contracts.scenario import DatabaseTarget

JDBC_DRIVERS: dict[str, str] = {
    "postgres": "org.postgresql.Driver",
    "mysql": "com.mysql.cj.jdbc.Driver",
}
DEFAULT_PORTS: dict[str, int] = {"postgres": 5432, "mysql": 3306}
_SCHEMES: dict[str, Kind] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_JDBC_SCHEME = {"postgres": "postgresql", "mysql": "mysql"}
# Query parameters that would carry credentials into the URL; refused outright.
_SECRET_PARAMS = re.compile(r"pass|pwd|secret|token|user|cred", re.IGNORECASE)
# What a URL part may look like. Anything else is refused without being echoed: drivers accept
# credentials in more places than a parser here can know (pgjdbc `;password=`, MySQL's
# `(host=..,password=..)` and `address=(..)` forms), and a refused URL may hold one.
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
_DATABASE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,63}$")
_PARAM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_PARAM_VALUE = re.compile(r"^[A-Za-z0-9_.,:/+~ -]{0,1024}$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@$-]{0,79}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_PASSWORD_HINT = (
    "the password belongs in an environment variable (MEDALLION_POSTGRES_PASSWORD or "
    "MEDALLION_MYSQL_PASSWORD, or the one export.<target>.password_env names), never in the URL"
)


class Secret:
    """A string that prints as `********`; call `reveal()` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself: hand it to a driver, never to a log or a message."""
        return self._value

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the secret replaced (defence for driver messages)."""
        return text.replace(self._value, "********") if self._value else text

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


@dataclass(frozen=True)
class Connection:
    """Where an export target is and who logs in; safe to print, log and put in errors.

    Attributes:
        kind: `postgres`, or `mysql` for MySQL and MariaDB alike.
        host: host name or IP of the TCP endpoint (127.0.0.1 for throwaway servers).
        port: TCP port.
        database: database name.
        user: login name.
        password: the login password (hidden), or None for socket authentication.
        params: extra, non-secret JDBC URL parameters (e.g. `connectionTimeZone=UTC`).
        unix_socket: a Unix socket path the Python drivers use instead of TCP (admin sessions
            of throwaway servers); Spark always uses TCP.
    """

    kind: Kind
    host: str
    port: int
    database: str
    user: str
    password: Secret | None = field(default=None, repr=False, compare=False)
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    unix_socket: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError("connection", [f"kind {self.kind!r} is not one of {list(KINDS)}"])
        problems: list[str] = []
        for key, value in self.params.items():
            # Neither key nor value is echoed: either may be a password pasted in the wrong place.
            if not _PARAM_KEY.match(key) or _SECRET_PARAMS.search(key):
                problems.append(
                    "a URL parameter name is not allowed (credentials, or characters other than "
                    f"letters, digits, _ . -); {_PASSWORD_HINT}"
                )
            elif not _PARAM_VALUE.match(value):
                problems.append(
                    f"the value of URL parameter {key!r} holds characters medallion does not pass "
                    "on (only letters, digits, _ . , : / + ~ - and space)"
                )
        if not _valid_host(self.host):
            problems.append("the host is not a host name or IP address; write HOST:PORT with no credentials")
        if not 0 < self.port < 65536:
            problems.append("the port must be between 1 and 65535")
        if self.database and not _DATABASE.match(self.database):
            problems.append(
                "the database name may only hold letters, digits, _ $ - (at most 64); "
                f"write /DBNAME with nothing after it but ?key=value parameters; {_PASSWORD_HINT}"
            )
        if self.user and not _USER.match(self.user):
            problems.append(
                "the user name may only hold letters, digits, _ . @ $ - (at most 80); "
                f"set it in MEDALLION_{self.kind.upper()}_USER or export.{self.kind}.user; {_PASSWORD_HINT}"
            )
        if problems:
            raise ConfigError("connection", list(dict.fromkeys(problems)))

    @property
    def jdbc_url(self) -> str:
        """`jdbc:postgresql://host:port/db?params` — never holds the user or the password."""
        url = f"jdbc:{_JDBC_SCHEME[self.kind]}://{self.host}:{self.port}/{self.database}"
        return f"{url}?{urlencode(dict(self.params))}" if self.params else url

    @property
    def driver(self) -> str:
        """The JDBC driver class Spark loads for this kind."""
        return JDBC_DRIVERS[self.kind]

    def reveal_password(self) -> str:
        """The password, for a driver's connect call or Spark's `password` property."""
        return self.password.reveal() if self.password is not None else ""

    def jdbc_properties(self) -> dict[str, str]:
        """Options for Spark's JDBC source: URL, driver, user and password as separate keys.

        Spark redacts option values whose key matches `spark.redaction.regex` (which includes
        `password`) in plans and the UI; a password inside the URL would not be redacted.
        """
        return {
            "url": self.jdbc_url,
            "driver": self.driver,
            "user": self.user,
            "password": self.reveal_password(),
        }

    def scrub(self, text: str) -> str:
        """`text` with the password masked, for messages built from driver errors."""
        return self.password.scrub(text) if self.password is not None else text

    def __str__(self) -> str:
        return f"{self.kind}://{self.user}@{self.host}:{self.port}/{self.database}"


def _valid_host(host: str) -> bool:
    if not isinstance(host, str) or not host:
        return False
    if _HOST.match(host) and len(host) <= 253:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """A printable form of a server URL: scheme, host, port and database, nothing else.

    Anything that does not parse as a plain `scheme://host[:port][/db]` prints as
    `<unprintable URL>`, because its parts cannot be told apart from a password.
    """
    try:
        connection = parse_url(url)
    except ConfigError:
        return "<unprintable URL>"
    return f"{_JDBC_SCHEME[connection.kind]}://{connection.host}:{connection.port}/{connection.database}"


def check_env_name(name: object, where: str) -> str:
    """`name` if it looks like an environment variable name, else ConfigError (name not echoed).

    A value that is not a variable name is most likely the password itself, typed where its
    variable's name belongs; printing it in "set the variable X" would leak it.
    """
    if isinstance(name, str) and ENV_NAME.match(name):
        return name
    raise ConfigError(
        where,
        [f"{where} must be the NAME of an environment variable (upper-case letters, digits and _, "
         "e.g. MEDALLION_POSTGRES_PASSWORD), not the password; put the password in that variable. "
         "(The value given is not shown, in case it is a password.)"],
    )


def env_prefix(kind: str) -> str:
    """`MEDALLION_POSTGRES` or `MEDALLION_MYSQL`: prefix of the override variables."""
    return f"MEDALLION_{kind.upper()}"


def parse_url(url: str, kind: Kind | None = None, database: str | None = None) -> Connection:
    """Parse a server URL without credentials into a Connection (password not yet set).

    Accepts `postgresql://host[:port][/db][?k=v]`, `postgres://`, `mysql://`, `mariadb://`,
    each optionally prefixed with `jdbc:`. Query parameters are kept for the JDBC URL.

    Args:
        url: the server URL (must not contain a user or password).
        kind: the expected kind; a URL of another kind is an error.
        database: database to use when the URL has no path.

    Raises:
        ConfigError: the URL is malformed, of the wrong kind, or carries credentials.
    """
    text = url.strip()
    bare = text[len("jdbc:"):] if text.lower().startswith("jdbc:") else text
    try:
        parts = urlsplit(bare)
    except ValueError:
        raise ConfigError("export target URL", ["the URL cannot be parsed; write postgresql://HOST:PORT/DB "
                                                "or mysql://HOST:PORT/DB"]) from None
    scheme_kind = _SCHEMES.get(parts.scheme.lower())
    if scheme_kind is None:
        # The scheme is not echoed: a URL without `//` may be a bare `user:password`.
        raise ConfigError(
            "export target URL",
            ["the scheme is not supported; write postgresql://HOST:PORT/DB or "
             "mysql://HOST:PORT/DB (a jdbc: prefix is fine)"],
        )
    if kind is not None and scheme_kind != kind:
        raise ConfigError("export target URL", [f"a {kind} target needs a {kind} URL, got {parts.scheme}://"])
    if "@" in parts.netloc:
        # Not echoing the netloc: it may hold a password.
        raise ConfigError(
            "export target URL",
            ["the URL holds credentials (user@ or user:password@); remove them: the user "
             "belongs in the config and the password in the environment variable named by password_env"],
        )
    if parts.fragment or ";" in bare or "\\" in bare:
        # pgjdbc and Connector/J read properties from places urlsplit does not split off.
        raise ConfigError(
            "export target URL",
            [f"the URL holds a ';', '\\' or '#' part medallion does not pass on; {_PASSWORD_HINT}"],
        )
    try:
        hostname = parts.hostname
        port = parts.port or DEFAULT_PORTS[scheme_kind]
    except ValueError:
        raise ConfigError("export target URL", ["the host or port cannot be parsed; write "
                                                f"{parts.scheme.lower()}://HOST:PORT/DB"]) from None
    if not hostname:
        raise ConfigError("export target URL", [f"no host in {scheme_kind} URL; write {parts.scheme.lower()}://HOST:PORT/DB"])
    if not _valid_host(hostname):
        raise ConfigError(
            "export target URL",
            [f"the host is not a host name or IP address (driver-specific forms such as "
             f"(host=..,..) or several hosts are not supported); {_PASSWORD_HINT}"],
        )
    name = parts.path.strip("/") or database
    if not name:
        raise ConfigError("export target URL", ["no database: add /DBNAME to the URL"])
    if not _DATABASE.match(name):
        raise ConfigError(
            "export target URL",
            ["the database name may only hold letters, digits, _ $ - (at most 64), with nothing after "
             f"it but ?key=value parameters; {_PASSWORD_HINT}"],
        )
    try:
        params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise ConfigError("export target URL", ["the ?key=value parameters cannot be parsed"]) from None
    if scheme_kind == "mysql":
        # DATETIME has no time zone: make the driver write gold's UTC instants as UTC.
        params.setdefault("connectionTimeZone", "UTC")
    return Connection(
        kind=scheme_kind,
        host=hostname,
        port=port,
        database=name,
        user="",
        params=params,
    )


def external_connection(
    kind: Kind,
    target: DatabaseTarget,
    environ: Mapping[str, str] | None = None,
) -> Connection | None:
    """The configured external server for one target kind, or None when there is none.

    Resolution order (the environment wins, so CI can point a committed scenario elsewhere):
    URL from `$MEDALLION_<KIND>_URL`, else `target.url`; user from `$MEDALLION_<KIND>_USER`,
    else `target.user`; password from the variable named by `target.password_env`.

    Args:
        kind: `postgres` or `mysql`.
        target: the scenario's `export.<kind>` section.
        environ: environment to read (default `os.environ`).

    Raises:
        ConfigError: a URL is configured but the password variable is unset, or the URL is bad.
    """
    env = os.environ if environ is None else environ
    prefix = env_prefix(kind)
    password_env = check_env_name(target.password_env, f"export.{kind}.password_env")
    url = env.get(f"{prefix}_URL") or target.url
    if not url:
        return None
    base = parse_url(url, kind=kind, database=target.database)
    user = env.get(f"{prefix}_USER") or target.user
    if not _USER.match(user):
        raise ConfigError(
            f"export.{kind}",
            [f"the user name from {prefix}_USER or export.{kind}.user may only hold letters, digits, "
             f"_ . @ $ - (at most 80); {_PASSWORD_HINT}. (The value is not shown.)"],
        )
    password = env.get(password_env)
    if not password:
        raise ConfigError(
            f"export.{kind}",
            [f"the {kind} server at {base.host}:{base.port} needs a password: set the environment "
             f"variable {password_env} (named by export.{kind}.password_env) for user {user!r}"],
        )
    return Connection(
        kind=kind,
        host=base.host,
        port=base.port,
        database=base.database,
        user=user,
        password=Secret(password),
        params=base.params,
    )
