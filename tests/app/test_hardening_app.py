"""Hardening of the application layer: secrets in URLs, the demo's folder clean-up, `--data`.

No Spark and no database server: every check here fails before either would start. Each runs
the real code path (the CLI's `main`, the demo's `fresh_data_root`, the connection parser) on
real folders, including a real read-only and a real full file system (tmpfs mounts, as root).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from medallion import cli
from medallion.contracts.errors import ConfigError, MedallionError
from medallion.contracts.paths import DataPathError, check_data_root
from medallion.contracts.scenario import DatabaseTarget, Export
from medallion.contracts.scenario_loader import load_scenario, resolve_scenario_path
from medallion.databases.connection import external_connection, parse_url, redact_url
from medallion.databases.targets import resolve_connections
from medallion.demo import DEMO_MARKER, fresh_data_root
from tests.support.mounts import tmpfs

SECRET = "Pw9xSecretValue42"


# --- secrets in connection settings --------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind in ("POSTGRES", "MYSQL"):
        for suffix in ("URL", "USER", "PASSWORD"):
            monkeypatch.delenv(f"MEDALLION_{kind}_{suffix}", raising=False)


def run_cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capfd.readouterr()
    return code, out, err


def test_semicolon_password_in_the_url_is_refused_and_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEDALLION_POSTGRES_URL", f"jdbc:postgresql://db.example:5432/medallion;password={SECRET}")
    monkeypatch.setenv("MEDALLION_POSTGRES_PASSWORD", "the-real-one")
    code, out, err = run_cli(["export", "--scenario", "driving", "--data", str(tmp_path), "--target", "postgres"], capfd)
    assert SECRET not in out + err
    assert code == 2
    assert "MEDALLION_POSTGRES_PASSWORD" in err and "Traceback" not in err


def test_a_password_typed_into_password_env_is_refused_without_echo(tmp_path: Path) -> None:
    # The scenario loader refuses it first...
    scenario = yaml.safe_load(resolve_scenario_path("driving").read_text(encoding="utf-8"))
    scenario["export"]["postgres"] = {"password_env": f"my {SECRET}!", "url": f"postgresql://u:{SECRET}@db/x"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_scenario(tmp_path / "s.yaml")
    assert SECRET not in str(refused.value)
    assert "export.postgres.password_env" in str(refused.value)
    # ...and the export again, for a target built without the loader (e.g. from code).
    target = DatabaseTarget.model_construct(url="postgresql://db.example:5432/medallion", password_env=f"my {SECRET}!")
    with pytest.raises(ConfigError) as refused:
        external_connection("postgres", target, environ={})
    assert SECRET not in str(refused.value)
    assert "export.postgres.password_env" in str(refused.value)
    # Also where no URL is set (the demo's throwaway servers): the config is wrong either way.
    with pytest.raises(ConfigError) as refused:
        resolve_connections(Export(postgres=DatabaseTarget.model_construct(password_env=SECRET.lower())), ["postgres"], environ={})
    assert SECRET.lower() not in str(refused.value)


# Credential-carrying URL forms the PostgreSQL and MySQL/MariaDB drivers accept.
FORMS = [
    "{scheme}://{user}:{pw}@{host}/{db}",
    "{scheme}://{user}:{pw}@{host}:5432/{db}?ssl=true",
    "{scheme}://{host}/{db}?password={pw}",
    "{scheme}://{host}/{db}?user={user}&password={pw}",
    "{scheme}://{host}/{db}?sslpassword={pw}",
    "{scheme}://{host}/{db};password={pw}",
    "{scheme}://{host}/{db};user={user};password={pw}",
    "{scheme}://{host}/{db}?ssl=true;password={pw}",
    "{scheme}://{host}/{db}?ssl=true&PWD={pw}",
    "{scheme}://{host}/{db}?trustCertificateKeyStorePassword={pw}",
    "{scheme}://{host}:{pw}/{db}",
    "{scheme}://({host},password={pw})/{db}",
    "{scheme}://(host={host},port=3306,user={user},password={pw})/{db}",
    "{scheme}://address=(host={host})(port=3306)(password={pw})/{db}",
    "{scheme}://{host},{host}:{pw}/{db}",
    "{scheme}://{host}/{db}/{pw}",
    "{scheme}://{host}/{db}#{pw}",
    "{scheme}://{host}/{db}?ssl={pw};x",
    "{scheme}://{host}/{db}?{pw}=1;password={pw}",
    "{pw}",
    "{pw}:{pw}",
    "{user}:{pw}@{host}/{db}",
]
SCHEMES = ["postgresql", "postgres", "jdbc:postgresql", "mysql", "jdbc:mysql", "mariadb", "jdbc:mariadb", "JDBC:MySQL"]


@settings(max_examples=400, deadline=None)
@given(
    form=st.sampled_from(FORMS),
    scheme=st.sampled_from(SCHEMES),
    secret=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$%&*+-._~:;,=()@/", min_size=6, max_size=30)
    .map(lambda s: f"Zq{s}Zq"),
    host=st.sampled_from(["db", "db.example.org", "127.0.0.1", "[::1]", "pg-1"]),
    user=st.sampled_from(["medallion", "bob", "u_1"]),
    db=st.sampled_from(["medallion", "x", "gold_db"]),
)
def test_no_url_form_leaks_its_password_into_anything_printed(
    form: str, scheme: str, secret: str, host: str, user: str, db: str
) -> None:
    url = form.format(scheme=scheme, user=user, pw=secret, host=host, db=db)
    kind = "mysql" if "my" in scheme.lower() or "maria" in scheme.lower() else "postgres"
    target = DatabaseTarget(password_env="TEST_PW")
    environ = {f"MEDALLION_{kind.upper()}_URL": url, "TEST_PW": "x"}
    shown: list[str] = [redact_url(url)]
    try:
        connection = external_connection(kind, target, environ)  # type: ignore[arg-type]
    except ConfigError as exc:
        shown.append(str(exc))
    else:
        assert connection is not None
        shown += [str(connection), repr(connection), connection.jdbc_url]
    for text in shown:
        assert secret not in text, (url, text)


def test_redacted_url_keeps_only_where_the_server_is() -> None:
    assert redact_url("jdbc:mysql://db.example:3307/gold?sslMode=REQUIRED") == "mysql://db.example:3307/gold"
    assert redact_url(f"postgresql://bob:{SECRET}@db/x") == "<unprintable URL>"
    assert parse_url("postgres://[::1]/x").host == "::1"


# --- the demo clears only what it created ---------------------------------------------------


def user_folder(root: Path) -> Path:
    """The folder from the issue: a landing CSV, a Parquet file in lake/ and a report."""
    (root / "landing").mkdir(parents=True)
    (root / "landing" / "customers.csv").write_text("id,name\n1,Ada\n")
    (root / "lake" / "silver" / "customers").mkdir(parents=True)
    (root / "lake" / "silver" / "customers" / "part-0.parquet").write_bytes(b"PAR1 user data PAR1")
    (root / "report.html").write_text("<p>my own report</p>")
    return root


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_refuses_a_user_folder_shaped_like_its_own(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "mine")
    before = files_under(folder)
    with pytest.raises(MedallionError, match="not created by `medallion demo`"):
        fresh_data_root(folder)
    assert files_under(folder) == before


def test_demo_empties_a_folder_it_created_and_only_its_own_entries(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    data = fresh_data_root(folder)
    assert (data.root / DEMO_MARKER).is_file()
    (data.landing / "e").mkdir(parents=True)
    (data.landing / "e" / "x.jsonl").write_text("{}\n")
    (data.root / "report.html").write_text("old report")
    fresh_data_root(folder)
    assert sorted(p.name for p in folder.iterdir()) == [DEMO_MARKER]

    # An entry the demo never writes: refused, nothing deleted.
    (folder / "landing").mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(MedallionError, match=r"holds \['notes.txt'\]"):
        fresh_data_root(folder)
    assert (folder / "notes.txt").read_text() == "mine" and (folder / "landing").is_dir()


def test_demo_never_follows_symlinks(tmp_path: Path) -> None:
    outside = user_folder(tmp_path / "outside")
    before = files_under(outside)
    # The data root itself is a link to the user's folder: refused (no marker there).
    link = tmp_path / "link"
    link.symlink_to(outside)
    with pytest.raises(MedallionError, match="not created by `medallion demo`"):
        fresh_data_root(link)
    # A demo root whose landing/ and marker-looking entries are links out: the links go, the
    # folders they point to stay whole.
    demo = tmp_path / "demo"
    fresh_data_root(demo)
    (demo / "landing").symlink_to(outside / "landing")
    (demo / "lake").symlink_to(outside / "lake")
    fresh_data_root(demo)
    assert files_under(outside) == before
    assert not (demo / "landing").exists()
    # A marker that is a link proves nothing.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "landing").mkdir()
    (fake / DEMO_MARKER).symlink_to(demo / DEMO_MARKER)
    with pytest.raises(MedallionError, match="not created by `medallion demo`"):
        fresh_data_root(fake)
    assert (fake / "landing").is_dir()


@pytest.mark.parametrize("where", ["/", "~", "."])
def test_demo_refuses_root_home_and_working_folder(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / DEMO_MARKER).write_text("medallion demo data root: `medallion demo --data` may empty and recreate this folder\n")
    with pytest.raises(MedallionError, match="file-system root, the home or the working folder"):
        fresh_data_root(Path(where))


# --- `--data` checked once, in the CLI ------------------------------------------------------


COMMANDS = {
    "pipeline": ["pipeline", "--scenario", "driving", "--data", "{data}"],
    "export": ["export", "--scenario", "driving", "--data", "{data}"],
    "verify": ["verify", "--scenario", "driving", "--data", "{data}"],
    "report": ["report", "--data", "{data}"],
    "demo": ["demo", "--data", "{data}"],
}


def argv(command: str, data: Path) -> list[str]:
    return [part.format(data=data) for part in COMMANDS[command]]


def assert_one_line_error(command: str, code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"medallion {command}: error: --data "), err
    for needle in needles:
        assert needle in lines[0], err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_data_naming_a_file_is_one_line(command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "data.txt"
    file.write_text("not a folder")
    code, _, err = run_cli(argv(command, file), capfd)
    assert_one_line_error(command, code, err, "is a file, not a folder")


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system (tmpfs mounted ro): root ignores permission bits."""
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        yield folder


@pytest.fixture
def full_folder(tmp_path: Path) -> Iterator[Path]:
    """A real full file system: a 1 MiB tmpfs filled to the last byte."""
    with tmpfs(tmp_path / "full", "size=1m", full=True) as folder:
        yield folder


@pytest.mark.parametrize("command", ["pipeline", "report", "demo"])
def test_read_only_data_root_is_one_line_for_writing_commands(
    command: str, read_only_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(argv(command, read_only_folder), capfd)
    assert_one_line_error(command, code, err, "is not writable", "Read-only file system")
    if command != "report":  # report reads an existing data root; see the next test
        code, _, err = run_cli(argv(command, read_only_folder / "new"), capfd)
        assert_one_line_error(command, code, err, "cannot be created", "Read-only file system")


@pytest.mark.parametrize("command", ["export", "verify", "report"])
def test_reading_commands_want_an_existing_data_root(command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(argv(command, tmp_path / "missing"), capfd)
    assert_one_line_error(command, code, err, "does not exist")


def test_reading_commands_accept_a_read_only_data_root(read_only_folder: Path) -> None:
    assert check_data_root(read_only_folder, writes=False, must_exist=True) == read_only_folder
    with pytest.raises(DataPathError, match="is not writable"):
        check_data_root(read_only_folder, writes=True)


def test_report_out_into_a_read_only_folder_is_one_line(
    tmp_path: Path, read_only_folder: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["report", "--data", str(tmp_path), "--out", str(read_only_folder / "r.html")], capfd)
    assert code == 2 and err.count("\n") == 1 and "the folder of --out" in err and "Read-only" in err, err


def test_demo_on_a_full_disk_is_one_line(full_folder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["demo", "--data", str(full_folder / "demo")], capfd)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("medallion demo: error: could not write") and "No space left on device" in lines[0], err
    assert not (full_folder / "demo" / "landing").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--seed", "-1"), ("--seed", "nan"), ("--seed", "inf"), ("--batches", "-3"), ("--batches", "0"), ("--batches", "inf")],
)
def test_demo_numeric_options_refuse_negative_nan_and_inf(
    option: str, value: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--data", str(tmp_path / "d"), option, value])
    err = capfd.readouterr().err
    assert exited.value.code == 2
    assert f"argument {option}:" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_check_data_root_is_usable_by_other_commands(tmp_path: Path) -> None:
    created = tmp_path / "a" / "b"
    assert check_data_root(created, writes=True) == created and not created.exists()
    assert os.path.isabs(check_data_root(Path("."), writes=False))
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataPathError, match="symbolic link to nothing"):
        check_data_root(dangling, writes=True, option="--out-dir")


# --- throwaway servers' temporary folders -------------------------------------------------


def test_stale_server_folders_of_other_accounts_or_links_are_never_reaped(tmp_path: Path) -> None:
    from medallion.local.throwaway_servers import reap_stale_directories

    gone = 2**22 + 12345  # above the default pid_max: no such process
    ours = tmp_path / "medallion-postgresql-ours"
    ours.mkdir()
    (ours / "medallion-owner").write_text(f"{gone}")
    theirs = tmp_path / "medallion-mariadb-theirs"
    theirs.mkdir()
    (theirs / "medallion-owner").write_text(f"{gone}")
    (theirs / "data").write_text("another account's server")
    os.chown(theirs / "medallion-owner", 65534, 65534)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "medallion-owner").write_text(f"{gone}")
    (elsewhere / "keep").write_text("not a server folder")
    (tmp_path / "medallion-postgresql-link").symlink_to(elsewhere)

    assert reap_stale_directories(tmp_path) == [ours]
    assert not ours.exists()
    assert (theirs / "data").exists() and (elsewhere / "keep").exists()
