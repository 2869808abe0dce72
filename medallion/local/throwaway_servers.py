"""Throwaway PostgreSQL and MariaDB servers for the demo and the tests.

Each server lives in its own temporary directory (data, Unix socket, logs), listens on a free
port on 127.0.0.1 only, and gets one database plus one least-privilege export user with a
random password generated here. Start-up takes about a second and prints nothing unless
`verbose=True`. Servers stop on `stop()`, on leaving the `with` block (also after an
exception), at interpreter exit, and - through the parent-death signal - when the Python
process is killed outright.

    with PostgresServer() as pg, MariaDBServer() as maria:
        export.run(spark, cfg, connections={"postgres": pg.connection, "mysql": maria.connection})

Running as root (containers, CI): PostgreSQL refuses root, so it runs as the `postgres` account
the OS package creates (or `$MEDALLION_PG_USER`), with the directory handed to that account;
MariaDB runs as `mysql` when that account exists, else with `--user=root`. Administration goes
through the Unix socket in the private (0700) directory: PostgreSQL trusts that socket, MariaDB
authenticates the OS user over it (unix_socket plugin); TCP logins always need a password.
Passwords never reach SQL text in the clear: the servers receive a SCRAM verifier / native hash.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from medallion.contracts.errors import DatabaseError
from medallion.databases.connection import Connection, Kind, Secret
from medallion.databases.dialects import check_identifier, dialect_for
from medallion.databases.sql import SqlSession, connect
from medallion.local.binaries import find_mariadb, find_postgres
from medallion.local.ports import LOOPBACK as _LOOPBACK
from medallion.local.ports import free_port

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; leave room for the file name
_PORT_ATTEMPTS = 5
_RUNNING: dict[int, DatabaseServer] = {}


def generate_password() -> str:
    """32 URL-safe random characters from the OS CSPRNG (no quoting issues anywhere)."""
    return secrets.token_urlsafe(24)


def scram_sha256_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802/7677).

    Handing PostgreSQL the verifier instead of the password keeps the clear text out of SQL
    statements, and so out of any server log.
    """
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def mysql_native_hash(password: str) -> str:
    """The mysql_native_password hash (`*` + SHA1(SHA1(password))), for IDENTIFIED BY PASSWORD."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _stop_all() -> None:
    # Only the process that started a server stops it (a forked child inherits this hook).
    for server in reversed(list(_RUNNING.values())):
        if server._owner_pid == os.getpid():
            with contextlib.suppress(Exception):
                server.stop()


atexit.register(_stop_all)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"    {line}" for line in text[-lines:]) or "(empty log)"


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether every ancestor of `path` can be traversed by uid/gid (checked from the mode bits)."""
    for folder in [path, *path.parents]:
        try:
            st = folder.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = 0o100
        elif st.st_gid == gid:
            bit = 0o010
        else:
            bit = 0o001
        if not st.st_mode & bit:
            return False
    return True


_OWNER_FILE = "medallion-owner"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    # A zombie (orphaned where PID 1 does not reap, as in many containers) is dead too.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def reap_stale_directories(parent: Path) -> list[Path]:
    """Remove directories of servers whose Python process and server both died (kill -9).

    Each directory records `<python pid> <server pid>` in a `medallion-owner` file; a directory
    without it is still being created and is left alone.
    """
    removed = []
    for folder in [*parent.glob("medallion-postgresql-*"), *parent.glob("medallion-mariadb-*")]:
        owner = folder / _OWNER_FILE
        # Only real folders whose owner file this account wrote: never a link, never another
        # user's directory in a shared /tmp.
        if folder.is_symlink() or not folder.is_dir() or owner.is_symlink():
            continue
        try:
            if owner.stat().st_uid != os.getuid():
                continue
            pids = [int(p) for p in owner.read_text().split()]
        except (OSError, ValueError):
            continue
        if pids and not any(_alive(pid) for pid in pids):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class DatabaseServer(ABC):
    """Common life cycle of a throwaway server; see PostgresServer and MariaDBServer.

    Args:
        database: name of the database to create for the export.
        user: name of the least-privilege export user.
        base_dir: parent of the temporary directory (default: the system temp dir).
        verbose: print one line on start and stop (default silent).
        startup_timeout: seconds to wait for the server to accept connections.
        keep_dir: leave the directory (data and logs) behind on stop, for debugging.
    """

    kind: ClassVar[Kind]
    label: ClassVar[str]

    def __init__(
        self,
        database: str = "medallion",
        user: str = "medallion",
        *,
        base_dir: str | Path | None = None,
        verbose: bool = False,
        startup_timeout: float = 30.0,
        keep_dir: bool = False,
    ) -> None:
        self.database = check_identifier(database, "database name")
        self.user = check_identifier(user, "user name")
        self.base_dir = Path(base_dir) if base_dir else None
        self.verbose = verbose
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.directory: Path | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._owner_pid = os.getpid()
        self._run_as: pwd.struct_passwd | None = None

    # --- public life cycle -------------------------------------------------------------

    def start(self) -> Connection:
        """Create the directory, initialise, launch, provision; return the export connection.

        Raises:
            SetupError: the server binaries are not installed (names the OS package).
            DatabaseError: the server did not come up; the message quotes its log.
        """
        if self._connection is not None:
            return self._connection
        began = time.monotonic()
        try:
            self._prepare_directory()
            self._initialise()
            self._launch()
            password = generate_password()
            self._provision(password)
        except BaseException:
            self._shutdown()
            raise
        self._connection = self._export_connection(Secret(password))
        self._owner_pid = os.getpid()
        _RUNNING[id(self)] = self
        self.startup_seconds = time.monotonic() - began
        self._say(f"{self.label} ready on {_LOOPBACK}:{self.port} in {self.startup_seconds:.1f}s ({self.directory})")
        return self._connection

    def stop(self) -> None:
        """Shut the server down (fast mode) and remove its directory. Safe to call twice."""
        _RUNNING.pop(id(self), None)
        was_running = self._process is not None
        self._shutdown()
        self._connection = None
        if was_running:
            self._say(f"{self.label} on port {self.port} stopped")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def connection(self) -> Connection:
        """The export user's connection (TCP on 127.0.0.1, password hidden)."""
        if self._connection is None:
            raise DatabaseError(f"the {self.label} server is not running; call start() or use it in a with block")
        return self._connection

    @property
    def admin(self) -> Connection:
        """The superuser's connection over the private Unix socket (no password)."""
        if self._connection is None or self.directory is None or self.port is None:
            raise DatabaseError(f"the {self.label} server is not running; call start() first")
        return self._admin_connection(self.database)

    def sql(self, *, admin: bool = False) -> SqlSession:
        """A session as the export user, or as the superuser when `admin=True`."""
        return connect(self.admin if admin else self.connection)

    def __enter__(self) -> DatabaseServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self.port}" if self.running else "stopped"
        return f"{type(self).__name__}(database={self.database!r}, user={self.user!r}, {state})"

    # --- implemented per kind ------------------------------------------------------------

    @abstractmethod
    def _os_user(self) -> pwd.struct_passwd | None:
        """The account to run the server as when we are root (None = stay as we are)."""

    @abstractmethod
    def _initialise(self) -> None:
        ...

    @abstractmethod
    def _server_command(self, port: int) -> list[str]:
        ...

    @abstractmethod
    def _admin_connection(self, database: str) -> Connection:
        ...

    @abstractmethod
    def _provision(self, password: str) -> None:
        ...

    @abstractmethod
    def _export_connection(self, password: Secret) -> Connection:
        ...

    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    port_in_use_marker: ClassVar[str] = "Address already in use"

    # --- shared machinery ---------------------------------------------------------------

    def _say(self, message: str) -> None:
        if self.verbose:
            print(f"[databases] {message}", file=sys.stderr, flush=True)

    @property
    def server_log(self) -> Path:
        assert self.directory is not None
        return self.directory / "server.log"

    def _prepare_directory(self) -> None:
        self._run_as = self._os_user()
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        candidates = [self.base_dir or Path(tempfile.gettempdir()), Path("/tmp")]
        parent = candidates[0].resolve()
        if self._run_as is not None:
            # The server account must be able to reach its directory (TMPDIR may be under /root).
            uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
            reachable = [c.resolve() for c in candidates if _reachable_by(c.resolve(), uid, gid)]
            if not reachable:
                raise DatabaseError(
                    f"no temporary directory the {self._run_as.pw_name!r} account can reach; "
                    "set TMPDIR (or base_dir) to a world-traversable folder such as /tmp"
                )
            parent = reachable[0]
        if len(str(parent)) + 40 > _SOCKET_PATH_MAX:
            raise DatabaseError(
                f"temporary directory path {parent} is too long for a Unix socket; "
                "set TMPDIR (or base_dir) to a short path such as /tmp"
            )
        reap_stale_directories(parent)
        self.directory = Path(tempfile.mkdtemp(prefix=f"medallion-{self.label.lower()}-", dir=parent))
        self._record_owner()
        if self._run_as is not None:
            os.chown(self.directory, self._run_as.pw_uid, self._run_as.pw_gid)
        os.chmod(self.directory, 0o700)

    def _record_owner(self) -> None:
        assert self.directory is not None
        pids = [os.getpid()] + ([self._process.pid] if self._process is not None else [])
        (self.directory / _OWNER_FILE).write_text(" ".join(map(str, pids)))

    def _wrap(self, command: Sequence[str], *, death_signal: str | None = None) -> list[str]:
        """Prefix `command` with setpriv: drop to the server account and die with the parent."""
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return list(command)
        prefix = [setpriv]
        if self._run_as is not None:
            prefix += [f"--reuid={self._run_as.pw_uid}", f"--regid={self._run_as.pw_gid}", "--clear-groups"]
        if death_signal:
            # Set after the uid change, so the kernel does not reset it; covers kill -9 of Python.
            prefix += ["--pdeathsig", death_signal]
        return [*prefix, *command]

    def _popen_user_kwargs(self) -> dict[str, Any]:
        # Fallback when setpriv is missing: let subprocess switch the account itself.
        if self._run_as is None or shutil.which("setpriv"):
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _run_tool(self, command: Sequence[str], log_name: str, what: str) -> None:
        assert self.directory is not None
        log = self.directory / log_name
        with log.open("wb") as out:
            result = subprocess.run(
                self._wrap(command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                check=False,
                **self._popen_user_kwargs(),
            )
        if result.returncode != 0:
            raise DatabaseError(f"{what} failed (exit {result.returncode}); its output:\n{_tail(log)}")

    def _launch(self) -> None:
        assert self.directory is not None
        for _attempt in range(_PORT_ATTEMPTS):
            self.port = free_port()
            if self._spawn(self.port):
                return
            # Another process took the port between probing and binding: try a fresh one.
            self._process = None
        raise DatabaseError(f"{self.label} could not bind a free port after {_PORT_ATTEMPTS} attempts")

    def _spawn(self, port: int) -> bool:
        """Start the server process on `port`; False when the port was taken."""
        log = self.server_log
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                self._wrap(self._server_command(port), death_signal=self.stop_signal.name),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.directory,
                start_new_session=True,  # Ctrl-C in a terminal reaches Python, not the server
                **self._popen_user_kwargs(),
            )
        self._record_owner()
        return self._wait_ready(log)

    def restart(self) -> Connection:
        """Start the server process again after it died, on the same directory, port and users.

        For crash tests: the data survives (both servers recover their logs), and the export
        connection stays valid.

        Raises:
            DatabaseError: the server was never started, or it does not come back.
        """
        if self._connection is None or self.directory is None or self.port is None:
            raise DatabaseError(f"the {self.label} server was never started; call start() first")
        if self.running:
            return self._connection
        if self._process is not None:
            self._process.wait()  # reap the dead process
        if not self._spawn(self.port):
            self._process = None
            raise DatabaseError(f"{self.label} could not restart: port {self.port} is taken by another process")
        return self._connection

    @property
    def pid(self) -> int | None:
        """The server process id while it runs (tests kill it to simulate a crash)."""
        return self._process.pid if self.running and self._process is not None else None

    def _wait_ready(self, log: Path) -> bool:
        """Poll the admin socket until a login works; False when the port was taken."""
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                text = log.read_text(errors="replace")
                if self.port_in_use_marker in text:
                    log.write_text("")
                    return False
                raise DatabaseError(
                    f"{self.label} exited with code {self._process.returncode} during start-up; "
                    f"its log ({log}):\n{_tail(log)}"
                )
            try:
                connect(self._admin_connection(self._admin_database()), connect_timeout=2).close()
                return True
            except DatabaseError as exc:
                last_error = str(exc)
            time.sleep(0.05)
        raise DatabaseError(
            f"{self.label} did not accept connections within {self.startup_timeout:.0f}s "
            f"(last error: {last_error}); its log:\n{_tail(log)}"
        )

    @abstractmethod
    def _admin_database(self) -> str:
        ...

    def _shutdown(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.directory is not None and not self.keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
            if not self.directory.exists():
                self.directory = None


class PostgresServer(DatabaseServer):
    """A throwaway PostgreSQL cluster (initdb + postgres) on a free loopback port.

    The export user may connect to its database only, and create, read, write and drop tables
    in its `public` schema; it is not a superuser and cannot create databases or roles.
    """

    kind: ClassVar[Kind] = "postgres"
    label: ClassVar[str] = "PostgreSQL"
    stop_signal: ClassVar[signal.Signals] = signal.SIGINT  # "fast" shutdown: no waiting for clients
    superuser: ClassVar[str] = "postgres"

    def _os_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        name = os.environ.get("MEDALLION_PG_USER", "postgres")
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise DatabaseError(
                f"PostgreSQL refuses to run as root and there is no {name!r} account to run it as: "
                "install the postgresql package (it creates one), create a system user, or set "
                "MEDALLION_PG_USER to an unprivileged account"
            ) from None

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    def _initialise(self) -> None:
        binaries = find_postgres()
        command = [
            str(binaries.initdb), "-D", str(self.data_dir), "-U", self.superuser,
            "--auth-local=trust",  # the socket sits in a 0700 directory: only its owner and root get in
            "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync",
            "--no-instructions",
        ]
        self._run_tool(command, "initdb.log", "initdb")

    def _server_command(self, port: int) -> list[str]:
        assert self.directory is not None
        binaries = find_postgres()
        settings = {
            "listen_addresses": _LOOPBACK,
            "port": str(port),
            "unix_socket_directories": str(self.directory),
            "unix_socket_permissions": "0700",
            # Throwaway data: durability buys nothing and costs start-up and commit time.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
            "max_connections": "50",
            "logging_collector": "off",
            "log_min_error_statement": "panic",  # never copy statement text into the log
            "TimeZone": "UTC",
        }
        command = [str(binaries.postgres), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    def _admin_database(self) -> str:
        return "postgres"

    def _admin_connection(self, database: str) -> Connection:
        assert self.directory is not None and self.port is not None
        return Connection(
            kind="postgres", host=_LOOPBACK, port=self.port, database=database,
            user=self.superuser, unix_socket=str(self.directory),
        )

    def _provision(self, password: str) -> None:
        q = dialect_for("postgres").quote
        verifier = scram_sha256_verifier(password)
        with connect(self._admin_connection("postgres")) as admin:
            admin.execute(
                f"CREATE ROLE {q(self.user)} LOGIN PASSWORD '{verifier}' NOSUPERUSER NOCREATEDB "
                "NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            )
            admin.execute(f"CREATE DATABASE {q(self.database)} TEMPLATE template0 ENCODING 'UTF8'")
            admin.execute(f"REVOKE ALL ON DATABASE {q(self.database)} FROM PUBLIC")
            admin.execute(f"GRANT CONNECT ON DATABASE {q(self.database)} TO {q(self.user)}")
            # Keep the export user out of every other database.
            for other in ("postgres", "template1"):
                admin.execute(f"REVOKE CONNECT, TEMPORARY ON DATABASE {q(other)} FROM PUBLIC")
        with connect(self._admin_connection(self.database)) as admin:
            admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {q(self.user)}")

    def _export_connection(self, password: Secret) -> Connection:
        assert self.port is not None
        return Connection(
            kind="postgres", host=_LOOPBACK, port=self.port, database=self.database,
            user=self.user, password=password,
        )


class MariaDBServer(DatabaseServer):
    """A throwaway MariaDB server (mariadb-install-db + mariadbd) on a free loopback port.

    The export user logs in from 127.0.0.1 only and holds CREATE, SELECT, INSERT, UPDATE,
    DELETE and DROP on its database, plus CREATE VIEW and REFERENCES for served entities' views
    and foreign keys, and nothing else (no global privileges, no GRANT OPTION).
    """

    kind: ClassVar[Kind] = "mysql"
    label: ClassVar[str] = "MariaDB"
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM  # normal shutdown
    port_in_use_marker: ClassVar[str] = "Address already in use"
    privileges: ClassVar[str] = "CREATE, SELECT, INSERT, UPDATE, DELETE, DROP, CREATE VIEW, REFERENCES"

    def _os_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("mysql")
        except KeyError:
            return None  # mariadbd accepts root with an explicit --user=root

    @property
    def data_dir(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def socket_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "mysqld.sock"

    def _admin_os_user(self) -> str:
        """The OS account the unix_socket plugin maps to the all-privileges account."""
        return pwd.getpwuid(os.geteuid()).pw_name

    def _server_user_args(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return [f"--user={self._run_as.pw_name if self._run_as else 'root'}"]

    _SMALL_INNODB: ClassVar[tuple[str, ...]] = (
        # Throwaway data: small buffers and no flushing make install and start take a second.
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=8M",
        "--innodb-flush-method=nosync",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
    )

    def _initialise(self) -> None:
        binaries = find_mariadb()
        command = [
            str(binaries.install_db), "--no-defaults", f"--datadir={self.data_dir}",
            *self._server_user_args(),
            "--auth-root-authentication-method=socket",
            f"--auth-root-socket-user={self._admin_os_user()}",
            "--skip-test-db", "--skip-name-resolve", *self._SMALL_INNODB,
        ]
        # install-db runs as us (root may chown to --user); no setpriv wrapper needed.
        log = self.directory / "install-db.log" if self.directory else Path("install-db.log")
        with log.open("wb") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.directory, check=False)
        if result.returncode != 0:
            raise DatabaseError(f"mariadb-install-db failed (exit {result.returncode}); its output:\n{_tail(log)}")

    def _wrap(self, command: Sequence[str], *, death_signal: str | None = None) -> list[str]:
        # mariadbd switches to --user itself; setpriv only adds the parent-death signal.
        run_as, self._run_as = self._run_as, None
        try:
            return super()._wrap(command, death_signal=death_signal)
        finally:
            self._run_as = run_as

    def _popen_user_kwargs(self) -> dict[str, Any]:
        return {}

    def _server_command(self, port: int) -> list[str]:
        assert self.directory is not None
        binaries = find_mariadb()
        return [
            str(binaries.mariadbd), "--no-defaults", f"--datadir={self.data_dir}",
            *self._server_user_args(),
            f"--bind-address={_LOOPBACK}", f"--port={port}", f"--socket={self.socket_path}",
            f"--pid-file={self.directory / 'mariadbd.pid'}", f"--log-error={self.server_log}",
            f"--tmpdir={self.directory}", "--skip-name-resolve", "--skip-symbolic-links",
            f"--secure-file-priv={self.directory}",  # no LOAD DATA / INTO OUTFILE outside it
            "--performance-schema=OFF", "--max-connections=50",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
            "--default-time-zone=+00:00", *self._SMALL_INNODB,
        ]

    def _admin_database(self) -> str:
        return "mysql"

    def _admin_connection(self, database: str) -> Connection:
        assert self.port is not None
        return Connection(
            kind="mysql", host="localhost", port=self.port, database=database,
            user=self._admin_os_user(), unix_socket=str(self.socket_path),
        )

    def _provision(self, password: str) -> None:
        q = dialect_for("mysql").quote
        user = f"'{check_identifier(self.user)}'@'{_LOOPBACK}'"
        with connect(self._admin_connection("mysql")) as admin:
            admin.execute(f"CREATE DATABASE {q(self.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            admin.execute(f"CREATE USER {user} IDENTIFIED BY PASSWORD '{mysql_native_hash(password)}'")
            admin.execute(f"GRANT {self.privileges} ON {q(self.database)}.* TO {user}")

    def _export_connection(self, password: Secret) -> Connection:
        assert self.port is not None
        return Connection(
            kind="mysql", host=_LOOPBACK, port=self.port, database=self.database,
            user=self.user, password=password,
            # Loopback only: TLS buys nothing; DATETIME columns hold UTC.
            params={"connectionTimeZone": "UTC", "sslMode": "DISABLED", "rewriteBatchedStatements": "true"},
        )


SERVERS: dict[str, type[DatabaseServer]] = {"postgres": PostgresServer, "mysql": MariaDBServer}


def start_server(kind: str, **kwargs: Any) -> DatabaseServer:
    """Start a throwaway server of one kind (`postgres` or `mysql`) and return it, running.

    Args:
        kind: `postgres` or `mysql` (MariaDB).
        **kwargs: passed to the server class (database, user, base_dir, verbose, ...).
    """
    try:
        server_class = SERVERS[kind]
    except KeyError:
        raise DatabaseError(f"unknown database kind {kind!r}; expected one of {sorted(SERVERS)}") from None
    server = server_class(**kwargs)
    server.start()
    return server

