"""A throwaway Spark standalone cluster (master + workers) started from the pyspark install.

Used by the cluster tests and by `docker/` users who want the same topology without Docker:
`with StandaloneCluster(workers=1) as cluster: spark-submit --master cluster.url ...`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from medallion.contracts.errors import SetupError
from medallion.local.ports import free_ports

# A line of the master's log: "Successfully started service 'MasterUI' on port 8080."
_BOUND_UI_PORT = re.compile(r"Successfully started service 'MasterUI' on port (\d+)")


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class StandaloneCluster:
    """Spark master and workers on 127.0.0.1, each a `spark-class` process, logs in a temp dir."""

    def __init__(self, workers: int = 1, cores_per_worker: int = 1, memory_per_worker: str = "1g") -> None:
        self.workers = workers
        self.cores = cores_per_worker
        self.memory = memory_per_worker
        # Master, its web UI and each worker's web UI: distinct ports, all picked at once.
        self.port, self.ui_port, *self._worker_ui_ports = free_ports(2 + workers)
        self.workdir = Path(tempfile.mkdtemp(prefix="medallion-cluster-"))
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> None:
        home = spark_home()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_WORKER_DIR": str(self.workdir / "work"), "SPARK_LOG_DIR": str(self.workdir)}
        log = (self.workdir / f"{name}.log").open("wb")
        process = subprocess.Popen([str(home / "bin" / "spark-class"), *args], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self._processes.append(process)

    def status(self) -> dict[str, Any]:
        """The master's JSON status page (empty while it is not up).

        Anything but JSON counts as not up: once in CI, under load, /json/ answered with an
        HTML page while the cluster started, and the start-up wait must go on, not fail."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as response:
                return dict(json.load(response))
        except (OSError, ValueError):
            return {}

    def alive_workers(self) -> int:
        """Workers the master reports ALIVE."""
        return sum(1 for worker in self.status().get("workers", []) if worker.get("state") == "ALIVE")

    def applications(self) -> list[str]:
        """Names of the applications that ran or run on this cluster."""
        status = self.status()
        return [app["name"] for app in status.get("activeapps", []) + status.get("completedapps", [])]

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        """Start the master, then the workers; return once every worker is registered."""
        deadline = time.monotonic() + timeout
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        while not self._found_master():
            self._fail_if_late(deadline, timeout)
            time.sleep(0.2)
        for index in range(self.workers):
            self._spawn(f"worker-{index}", "org.apache.spark.deploy.worker.Worker", self.url,
                        "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                        "--webui-port", str(self._worker_ui_ports[index]))
        while self.alive_workers() < self.workers:
            self._fail_if_late(deadline, timeout)
            time.sleep(0.5)
        return self

    def _found_master(self) -> bool:
        """Whether the master is up, taking the ports it bound: Spark moves on to the next port
        when the one it was given has been taken since it was picked. Its log names the web
        UI's port (at the default INFO level), its status page the master URL's."""
        log = self.workdir / "master.log"
        bound = _BOUND_UI_PORT.findall(log.read_text(errors="replace")) if log.exists() else []
        if bound:
            self.ui_port = int(bound[-1])
        url = str(self.status().get("url", ""))
        if not url.startswith("spark://"):
            return False
        self.port = int(url.rsplit(":", 1)[1])
        return True

    def _fail_if_late(self, deadline: float, timeout: float) -> None:
        """Stop everything and raise with the logs' tails if a process died or time is up."""
        if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
            logs = "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.workdir.glob("*.log")))
            self.stop()
            raise SetupError(f"the Spark standalone cluster did not come up within {timeout:.0f}s:\n{logs}")

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the work directory."""
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
