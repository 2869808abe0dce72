"""Hardening of the generator's control API, against a real `medallion generate --serve` process.

Cross-site and DNS-rebinding requests, the bearer token (generated into an owner-only file or
taken from MEDALLION_CONTROL_TOKEN), the Host allowlist, and `/api/clean` on a data root whose
folders are links or hold a user's files.
"""

from __future__ import annotations

import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medallion.local.ports import free_port
from tests.support.control_api import read_token, served_environment, start_served, wait_for

Served = tuple[httpx.Client, subprocess.Popen[bytes], Path, str, int]
ENV_TOKEN = "env-token-0123456789-abcdefghij"


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM the generator; its stderr."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return err.decode(errors="replace")


def serve(data: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    process = start_served(data, port, env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        token = ENV_TOKEN if env and "MEDALLION_CONTROL_TOKEN" in env else read_token(data, process)
        wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 2)
        yield client, process, data, token, port
    finally:
        client.close()
        stop(process)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # The token from the environment: these tests need no token file (the next one checks it).
    yield from serve(tmp_path / "data", served_environment(MEDALLION_CONTROL_TOKEN=ENV_TOKEN))


@pytest.fixture(scope="module")
def served_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("control") / "data", served_environment(MEDALLION_CONTROL_TOKEN=ENV_TOKEN))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def landing_files(data: Path) -> list[Path]:
    return sorted(data.glob("landing/*/*.jsonl"))


def test_the_cross_site_request_of_the_issue_changes_nothing(served: Served) -> None:
    client, _, data, _, _ = served
    evil = {"Host": "evil.example", "Origin": "http://evil.example", "Content-Type": "text/plain"}
    for path in ("/api/pause", "/api/clean"):
        answer = client.post(path, headers=evil, content=b"x")
        assert answer.status_code in (400, 403, 415), (path, answer.status_code, answer.text)
    # The same request on the right Host, but still from another page and without the token.
    local = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert client.post("/api/pause", headers=local, content=b"x").status_code == 403
    assert client.post("/api/pause").status_code == 401
    health = client.get("/api/health").json()
    assert health["status"] == "running"
    assert landing_files(data) and (data / "landing/companies/companies-b000000-p00.jsonl").is_file()


def test_every_guard_refuses_even_with_the_token(served: Served) -> None:
    client, _, data, token, port = served
    auth = bearer(token)
    assert client.post("/api/pause", headers={**auth, "Host": "evil.example"}).status_code == 400
    assert client.post("/api/pause", headers={**auth, "Host": f"evil.example:{port}"}).status_code == 400
    assert client.post("/api/pause", headers={**auth, "Host": f"0.0.0.0:{port}"}).status_code == 400
    origin = client.post("/api/pause", headers={**auth, "Origin": "http://evil.example"})
    assert origin.status_code == 403 and "Origin" in origin.json()["detail"]
    assert client.post("/api/pause", headers={**auth, "Origin": "null"}).status_code == 403
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        body = client.post("/api/pause", headers={**auth, "Content-Type": content_type}, content=b"a=b")
        assert body.status_code == 415, content_type
    assert client.post("/api/pause", headers=auth, content=b"no type").status_code == 415
    missing = client.post("/api/pause")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/api/pause", headers=bearer(token + "x")).status_code == 401
    assert client.post("/api/pause", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert client.get("/api/logs").status_code == 401
    assert client.get("/api/health").json()["status"] == "running", "no refused request paused it"
    # Its own page (/docs) sends its own Origin and a JSON body: allowed.
    same = {**auth, "Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/json"}
    paused = client.post("/api/pause", headers=same, content=b"{}")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert client.get("/api/logs", headers=auth).status_code == 200
    assert client.post("/api/resume", headers=auth).json()["status"] == "running"
    assert landing_files(data)


def test_generated_token_is_owner_only_never_printed_and_removed_at_stop(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("keep me\n")
    (data / "manifests").mkdir(parents=True)
    (data / "manifests" / ".control-token").symlink_to(victim)  # a stale token file, as a link
    port = free_port()
    process = start_served(data, port)
    path = data / "manifests" / ".control-token"
    try:
        wait_for(lambda: process.poll() is None and path.exists() and not path.is_symlink())
        token = read_token(data, process)
        assert not path.is_symlink() and victim.read_text() == "keep me\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(token) >= 32
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 1)
            entries = client.get("/api/logs", headers=bearer(token), params={"limit": 10_000}).json()["entries"]
        assert token not in repr(entries)
        assert any(str(path) in e["message"] for e in entries)
    finally:
        err = stop(process)
    assert process.returncode == 0, err
    assert str(path) in err and token not in err
    assert not path.exists(), "the token file goes with the server"


def test_token_and_host_names_from_the_environment(tmp_path: Path) -> None:
    env = served_environment(MEDALLION_CONTROL_TOKEN=ENV_TOKEN, MEDALLION_CONTROL_HOSTS="generator, *.example.internal")
    data, port = tmp_path / "data", free_port()
    process = start_served(data, port, env)
    auth = bearer(ENV_TOKEN)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 1)
            assert not (data / "manifests" / ".control-token").exists()
            assert client.post("/api/pause", headers={**auth, "Host": f"generator:{port}"}).status_code == 200
            assert client.post("/api/resume", headers={**auth, "Host": "api.example.internal"}).status_code == 200
            assert client.post("/api/pause", headers={**auth, "Host": "evil.example"}).status_code == 400
            assert client.post("/api/pause", headers={**auth, "Host": "localhost"}).status_code == 200
    finally:
        err = stop(process)
    assert process.returncode == 0, err
    assert "MEDALLION_CONTROL_TOKEN" in err and ENV_TOKEN not in err


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MEDALLION_CONTROL_TOKEN", "tiny-secret"), ("MEDALLION_CONTROL_TOKEN", "a token with spaces in it"),
     ("MEDALLION_CONTROL_HOSTS", "*"), ("MEDALLION_CONTROL_HOSTS", "http://x:1")],
)
def test_weak_token_or_open_host_list_is_refused_at_start(tmp_path: Path, variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "medallion.cli", "generate", "--scenario", "driving", "--profile", "small", "--seed", "5",
         "--data", str(tmp_path / "data"), "--serve", f"127.0.0.1:{free_port()}", "--quiet", "--batches", "1"],
        capture_output=True, text=True, timeout=120, env=served_environment(**{variable: value}),
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and variable in result.stderr
    if variable == "MEDALLION_CONTROL_TOKEN":
        assert value not in result.stderr
    assert not list((tmp_path / "data").glob("landing/*/*.jsonl")), "refused before writing"


def test_clean_with_an_entity_folder_leading_out_deletes_nothing(served: Served, tmp_path: Path) -> None:
    client, process, data, token, _ = served
    auth = bearer(token)
    assert client.post("/api/pause", headers=auth).json()["status"] == "paused"
    # drivers (second in processing order) becomes a link to a folder outside the data root.
    outside = tmp_path / "outside-drivers"
    shutil.move(data / "landing" / "drivers", outside)
    (data / "landing" / "drivers").symlink_to(outside)
    (outside / "precious.txt").write_text("mine\n")
    before = {p: p.read_bytes() for p in [*landing_files(data), *data.glob("manifests/*/b*.json"), *outside.iterdir()]}
    refused = client.post("/api/clean", headers=auth)
    assert refused.status_code == 409
    assert "landing/drivers" in refused.json()["detail"] and "data root" in refused.json()["detail"]
    after = {p: p.read_bytes() for p in [*landing_files(data), *data.glob("manifests/*/b*.json"), *outside.iterdir()]}
    assert after == before, "nothing deleted, companies included"
    # The link replaced by the real folder: clean works, and resume continues without a gap.
    (data / "landing" / "drivers").unlink()
    shutil.move(outside, data / "landing" / "drivers")
    (data / "landing" / "companies" / "notes.txt").write_text("a user's file\n")
    (data / "landing" / "companies" / ".env").write_text("SECRET=1\n")
    cleaned = client.post("/api/clean", headers=auth).json()
    assert cleaned["removed_files"] > 0 and cleaned["kept_files"] == 3  # notes.txt, .env, precious.txt
    assert (data / "landing" / "companies" / "notes.txt").read_text() == "a user's file\n"
    assert (data / "landing" / "companies" / ".env").is_file() and (data / "landing" / "drivers" / "precious.txt").is_file()
    assert not landing_files(data) and not list(data.glob("manifests/*/b*.json"))
    assert client.post("/api/resume", headers=auth).json()["baseline_regenerated"] is True
    wait_for(lambda: client.get("/api/health").json()["entities"]["driver_events"]["batches"] >= 3)
    stop(process)
    for entity in ("companies", "drivers", "driver_events"):
        ids = sorted(int(p.stem[1:]) for p in (data / "manifests" / entity).glob("b*.json"))
        assert ids == list(range(len(ids))) and len(ids) >= 3, (entity, ids)


def test_clean_that_fails_half_way_leaves_a_run_that_resumes_without_a_gap(served: Served) -> None:
    client, process, data, token, _ = served
    auth = bearer(token)
    assert client.post("/api/pause", headers=auth).json()["status"] == "paused"
    last = min(len(list((data / "manifests" / e).glob("b*.json"))) for e in ("companies", "drivers", "driver_events")) - 1
    assert last >= 2
    stuck = data / "manifests" / "drivers" / "b000001.json"
    subprocess.run(["chattr", "+i", str(stuck)], check=True)
    try:
        failed = client.post("/api/clean", headers=auth)
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert failed.status_code == 409 and "b000001.json" in failed.json()["detail"]
    # Every later batch's manifests went first; batch 0 and its files are whole.
    assert not (data / "manifests" / "driver_events" / f"b{last:06d}.json").exists()
    assert (data / "landing" / "companies" / "companies-b000000-p00.jsonl").is_file()
    assert client.post("/api/resume", headers=auth).status_code == 200
    wait_for(lambda: len(list((data / "manifests" / "driver_events").glob("b*.json"))) >= last + 2)
    stop(process)
    for entity in ("companies", "drivers", "driver_events"):
        ids = sorted(int(p.stem[1:]) for p in (data / "manifests" / entity).glob("b*.json"))
        assert ids == list(range(len(ids))), (entity, ids)
        for path in (data / "landing" / entity).glob("*.jsonl"):
            assert int(path.name.split("-b")[1][:6]) < len(ids), "no landing file without its manifest"


HEADER_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=40)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/api/pause", "/api/resume", "/api/clean"]),
    host=st.one_of(st.none(), st.sampled_from(["evil.example", "127.0.0.1.evil.example", "localhost.", "0.0.0.0"]), HEADER_TEXT),
    origin=st.one_of(st.none(), st.sampled_from(["http://evil.example", "null", "file://"]), HEADER_TEXT),
    content_type=st.one_of(st.none(), st.sampled_from(["text/plain", "application/json", "multipart/form-data"]), HEADER_TEXT),
    body=st.binary(max_size=64),
    authorization=st.one_of(st.none(), st.sampled_from(["Bearer", "Basic x"]),
                           HEADER_TEXT.filter(bool).map(lambda t: f"Bearer {t}")),
)
def test_no_request_without_the_token_changes_state(
    served_module: Served, path: str, host: str | None, origin: str | None, content_type: str | None, body: bytes,
    authorization: str | None,
) -> None:
    client, _, data, token, _ = served_module
    headers = {k: v for k, v in {"Host": host, "Origin": origin, "Content-Type": content_type,
                                 "Authorization": authorization}.items() if v is not None}
    if authorization is not None and token in authorization:
        return
    answer = client.post(path, headers=headers, content=body)
    assert answer.status_code in (400, 401, 403, 415, 422), (headers, answer.status_code)
    assert client.get("/api/health").json()["status"] == "running"
    assert (data / "landing/companies/companies-b000000-p00.jsonl").is_file()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    good_host=st.booleans(), origin=st.sampled_from(["none", "same", "foreign"]),
    content_type=st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/plain"]),
    with_token=st.booleans(),
)
def test_pause_answers_only_a_request_passing_every_guard(
    served_module: Served, good_host: bool, origin: str, content_type: str | None, with_token: bool,
) -> None:
    client, _, _, token, port = served_module
    host = f"127.0.0.1:{port}" if good_host else f"attacker.example:{port}"
    headers = {"Host": host}
    if origin != "none":
        headers["Origin"] = f"http://{host}" if origin == "same" else "http://attacker.example"
    if content_type is not None:
        headers["Content-Type"] = content_type
    if with_token:
        headers["Authorization"] = f"Bearer {token}"
    allowed = good_host and origin != "foreign" and content_type != "text/plain" and with_token
    answer = client.post("/api/pause", headers=headers, content=b"{}" if content_type else b"")
    assert (answer.status_code == 200) == allowed, (headers, answer.status_code, answer.text)
    if allowed:
        assert client.post("/api/resume", headers=bearer(token)).json()["status"] == "running"
    assert client.get("/api/health").json()["status"] == "running"


def test_compose_passes_a_required_token_and_lets_the_healthcheck_and_the_network_in() -> None:
    from generators.control import allowed_hosts
    from tests.support.compose import COMPOSE_FILE, environment_of, load_compose

    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "MEDALLION_CONTROL_TOKEN: ${MEDALLION_CONTROL_TOKEN:?" in text, "compose stops without a token"
    generator = load_compose({"MEDALLION_POSTGRES_PASSWORD": "p", "MEDALLION_MYSQL_PASSWORD": "m", "JUPYTER_TOKEN": "j",
                              "MEDALLION_CONTROL_TOKEN": ENV_TOKEN})["services"]["generator"]
    env = environment_of(generator)
    assert env["MEDALLION_CONTROL_TOKEN"] == ENV_TOKEN
    serve = generator["command"][generator["command"].index("--serve") + 1]
    hosts = allowed_hosts(serve.rpartition(":")[0], env)
    assert {"127.0.0.1", "localhost", "generator"} <= set(hosts) and "0.0.0.0" not in hosts
    assert "http://127.0.0.1:8000/api/health" in " ".join(generator["healthcheck"]["test"]), "the open endpoint"
