"""Free ports, and how the standalone cluster reads its master's status (no JVM: a stand-in
HTTP server answers on the master's web UI port)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medallion.local.cluster import StandaloneCluster
from medallion.local.ports import LOOPBACK, free_ports


def test_free_ports_are_distinct_and_free() -> None:
    ports = free_ports(64)
    assert len(set(ports)) == 64
    for port in ports:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, port))


class _Answer(BaseHTTPRequestHandler):
    body = b""
    content_type = "text/html"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self.content_type)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def master_ui() -> Iterator[tuple[StandaloneCluster, type[_Answer]]]:
    answer = type("Answer", (_Answer,), {})
    server = ThreadingHTTPServer((LOOPBACK, 0), answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cluster = StandaloneCluster(workers=2)  # not started: no process runs
    cluster.ui_port = int(server.server_address[1])
    try:
        yield cluster, answer
    finally:
        server.shutdown()
        server.server_close()
        cluster.stop()


def test_an_html_answer_while_the_master_starts_counts_as_not_up(master_ui: tuple[StandaloneCluster, type[_Answer]]) -> None:
    cluster, answer = master_ui
    answer.body = b'<!DOCTYPE html><html data-bs-theme="light"><body>Spark Master</body></html>'
    assert cluster.status() == {}
    assert cluster.alive_workers() == 0
    assert not cluster._found_master()


def test_the_json_status_is_read(master_ui: tuple[StandaloneCluster, type[_Answer]]) -> None:
    cluster, answer = master_ui
    answer.content_type = "application/json"
    answer.body = json.dumps({
        "workers": [{"state": "ALIVE"}, {"state": "DEAD"}, {"state": "ALIVE"}],
        "activeapps": [{"name": "medallion-silver"}],
        "completedapps": [{"name": "medallion-bronze"}],
    }).encode()
    assert cluster.alive_workers() == 2
    assert cluster.applications() == ["medallion-silver", "medallion-bronze"]


def test_the_cluster_picks_distinct_ports() -> None:
    cluster = StandaloneCluster(workers=3)
    try:
        ports = [cluster.port, cluster.ui_port, *cluster._worker_ui_ports]
        assert len(set(ports)) == 5
    finally:
        cluster.stop()


def test_the_master_is_found_on_the_ports_it_bound(master_ui: tuple[StandaloneCluster, type[_Answer]]) -> None:
    # The web UI port picked for the master was taken before it bound: Spark moved on to the
    # next one (here the stand-in's) and says so in its log; the master URL comes from the page.
    cluster, answer = master_ui
    moved_to, cluster.ui_port = cluster.ui_port, free_ports(1)[0]
    answer.content_type = "application/json"
    answer.body = json.dumps({"url": "spark://127.0.0.1:41234", "workers": []}).encode()
    assert not cluster._found_master()  # nothing answers JSON on the picked port yet
    (cluster.workdir / "master.log").write_text(
        "INFO Utils: Successfully started service 'sparkMaster' on port 41234.\n"
        f"WARN Utils: Service 'MasterUI' could not bind on port {cluster.ui_port}. Attempting port {moved_to}.\n"
        f"INFO Utils: Successfully started service 'MasterUI' on port {moved_to}.\n"
    )
    assert cluster._found_master()
    assert (cluster.ui_port, cluster.port, cluster.url) == (moved_to, 41234, "spark://127.0.0.1:41234")
