"""Throwaway servers for the cluster-storage tests, each bound to 127.0.0.1 and stopped by its
``stop`` (the fixtures call it even when a test fails):

- :class:`Postgres`: a PostgreSQL 15 server in a temp dir (Debian's binaries, which refuse to
  run as root: as root they run as the ``postgres`` user, and connections come as ``root``);
- :class:`S3StandIn`: moto's server mode, an offline stand-in for S3 (same API, in memory);
- :class:`MlflowServer`: ``mlflow server`` with any backend store and artifact destination;
- :class:`RayCluster`: a head node and a worker node of Ray on this machine, each with its own
  temp dir (two nodes sharing one would delete each other's unpacked runtime files).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

VENV_BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL_POSTGRES = ("PostgreSQL 15 server binaries not found in {bin} (set PG_BIN to another "
                    "folder); install them with `apt-get install -y postgresql-15` (Debian/Ubuntu)")
# moto accepts any credentials; boto3, pyarrow (Ray Tune's S3 file system) and MLflow read these
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "stand-in", "AWS_SECRET_ACCESS_KEY": "stand-in",
                  "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    """``ray start`` flags giving a node's side services free ports. Their defaults are fixed
    (the dashboard agent's HTTP port is 52365): with a second Ray node on the machine the agent
    cannot bind, stays up without HTTP, and ``ray job submit`` is refused ("No available
    agent") for as long as the node lives."""
    return ["--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            "--ray-client-server-port", str(free_port())]


def wait_until(check, what: str, log: Path, proc: subprocess.Popen, timeout: float = 120):
    """Poll ``check()`` until it is true; raise naming ``what`` with its log when ``proc``
    exits or ``timeout`` passes first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if check():
                return
        except (requests.RequestException, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not start (exit status {proc.poll()}, waited at most "
                       f"{timeout:.0f} s)\n{log.read_text()[-3000:]}")


def kill_matching(text: str) -> int:
    """SIGKILL every process whose command line mentions ``text`` (a node's own temp dir)."""
    pids = subprocess.run(["pgrep", "-f", text], capture_output=True, text=True).stdout.split()
    for pid in pids:
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return len(pids)


class Postgres:
    """``initdb`` + ``pg_ctl start`` in a fresh temp dir (short: it holds the Unix socket)."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        self.data, self.log = self.dir / "data", self.dir / "log"

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> "Postgres":
        if not (PG_BIN / "pg_ctl").exists():
            raise FileNotFoundError(INSTALL_POSTGRES.format(bin=PG_BIN))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "root")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                  "-o", f"-k {self.dir} -p {self.port} -h 127.0.0.1", "start")
        return self

    def url(self, database: str) -> str:
        """A URL for libpq and SQLAlchemy (whose ``postgresql://`` driver is psycopg 3)."""
        return f"postgresql://root@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg

        # CREATE DATABASE cannot run in a transaction
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def query(self, database: str, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database)) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class S3StandIn:
    """moto's S3 server on a free port: a stand-in for S3 that needs no network or account.
    Clients find it through ``env`` (``AWS_ENDPOINT_URL``, read by boto3 and by pyarrow's S3
    file system) plus dummy credentials."""

    def __init__(self, log: Path):
        self.port, self.log = free_port(), log
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}
        self.proc = None

    def start(self) -> "S3StandIn":
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(self.endpoint + "/moto-api/", timeout=2).ok,
                   "moto S3 stand-in", self.log, self.proc)
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="stand-in", aws_secret_access_key="stand-in")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                          Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class MlflowServer:
    """A lean ``mlflow server`` (one worker, no job execution) on 127.0.0.1."""

    def __init__(self, backend: str, artifacts: str, log: Path, env: dict | None = None):
        self.port, self.log = free_port(), log
        self.uri = f"http://127.0.0.1:{self.port}"
        self.args = ["--backend-store-uri", backend, "--artifacts-destination", artifacts]
        self.env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(env or {}))
        self.proc = None

    def start(self) -> "MlflowServer":
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port",
                 str(self.port), "--workers", "1", *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(self.uri + "/health", timeout=2).ok, "mlflow server",
                   self.log, self.proc, timeout=180)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class RayCluster:
    """``ray start --head`` and one ``ray start --address`` worker, ``cpus`` CPUs each, every
    process started with ``env`` (a node's trial workers inherit it: storage credentials)."""

    def __init__(self, env: dict, cpus: int = 1):
        self.env = dict(env, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
                        PATH=f"{VENV_BIN}:{env['PATH']}")
        self.env.pop("RAY_ADDRESS", None)
        self.cpus = cpus
        self.gcs = f"127.0.0.1:{free_port()}"
        self.temps = [tempfile.mkdtemp(prefix=p, dir="/tmp") for p in ("rh", "rw")]

    def start(self) -> "RayCluster":
        ray, common = str(VENV_BIN / "ray"), ["--node-ip-address", "127.0.0.1",
                                              "--num-cpus", str(self.cpus),
                                              "--disable-usage-stats"]
        head, worker = self.temps
        subprocess.run([ray, "start", "--head", "--port", self.gcs.split(":")[1],
                        "--include-dashboard", "false", "--temp-dir", head, *common,
                        *node_ports()],
                       env=self.env, check=True, capture_output=True, timeout=180)
        subprocess.run([ray, "start", "--address", self.gcs, "--temp-dir", worker, *common,
                        *node_ports()],
                       env=self.env, check=True, capture_output=True, timeout=180)
        return self

    def stop(self) -> None:
        for temp in self.temps:
            kill_matching(temp)
            shutil.rmtree(temp, ignore_errors=True)
