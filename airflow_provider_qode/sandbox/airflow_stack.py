"""A real Airflow stack on loopback: api-server, scheduler, dag-processor and triggerer.

One implementation serves the end-to-end test (``tests/fixtures/airflow_stack.py``), the UI
tests' lone api-server (``tests/fixtures/airflow_api.py``, ``components=("api-server",)``) and
``make demo-ui`` (``scripts/demo_ui.py``). Everything lives in a fresh ``AIRFLOW_HOME``: a SQLite
metadata DB, each process's output in ``<home>/stack-logs/<name>.log``, task logs under
``<home>/logs``. Ports are free ones picked at start; the simple auth manager gets one ``admin``
user whose random password is written before the api-server starts, so the REST API is used
with a real JWT from ``POST /auth/token``. ``stop()`` ends every process it started and their
descendants (task processes run in process groups of their own), and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

#: The processes of the stack, in start order (stopped in reverse).
COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
USERNAME = "admin"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowStackError(RuntimeError):
    """The stack did not start or a wait ran out; the message carries the process log tails."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick), for a process to bind next."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def connection_env(
    qode_url: str, qode_token: str, s3_endpoint: str, **qode_extra: Any
) -> dict[str, str]:
    """``qode_default`` and ``aws_default`` as ``AIRFLOW_CONN_*`` variables for every process.

    The Qode connection allows assets from loopback (the stand-in serves them); ``qode_extra``
    adds or overrides connection extras.
    """
    extra: dict[str, Any] = {"allowed_asset_hosts": ["127.0.0.1"], "backoff_base": 0.05}
    extra.update(qode_extra)
    qode = {"conn_type": "qode", "host": qode_url, "password": qode_token, "extra": extra}
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    return {
        "AIRFLOW_CONN_QODE_DEFAULT": json.dumps(qode),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _inherited_env() -> dict[str, str]:
    """This process's environment minus Airflow settings, proxies and pytest markers."""
    dropped = ("AIRFLOW", "_AIRFLOW", "PYTEST")
    return {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(dropped) and not key.upper().endswith("_PROXY")
    }


@dataclass
class AirflowStack:
    """Start with :meth:`start` (or ``with``), talk to it with :meth:`api`, stop with :meth:`stop`.

    :param home: a fresh directory for ``AIRFLOW_HOME`` (created).
    :param dags_folder: the DAG files to serve.
    :param env: extra environment for every process: ``AIRFLOW_CONN_*``, ``QODE_LAKE_*``...
    :param parallelism: LocalExecutor's task slots (at least 2, so mapped chunks run side by side).
    :param components: which of :data:`COMPONENTS` to run (the api-server always among them).
    """

    home: Path
    dags_folder: Path
    env: Mapping[str, str] = field(default_factory=dict)
    parallelism: int = 4
    components: Sequence[str] = COMPONENTS
    host: str = "127.0.0.1"
    port: int = 0
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)
    timings: dict[str, float] = field(default_factory=dict, init=False)
    _logs: list[IO[bytes]] = field(default_factory=list, init=False)
    _token: str | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "stack-logs"

    @property
    def task_log_dir(self) -> Path:
        return self.home / "logs"

    def environment(self) -> dict[str, str]:
        """Every process's environment: one home, one DB, one secret set, short intervals."""
        from cryptography.fernet import Fernet

        secrets_file = self.home / "secrets.json"
        if not secrets_file.exists():  # shared by every process, stable across restarts
            keys = {
                "jwt": secrets.token_urlsafe(64),  # >= 64 bytes for HS512
                "api": secrets.token_urlsafe(32),
                "fernet": Fernet.generate_key().decode(),
                "worker_logs": free_port(self.host),
                "trigger_logs": free_port(self.host),
            }
            secrets_file.write_text(json.dumps(keys))
        keys = json.loads(secrets_file.read_text())
        env = _inherited_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                "simple_auth_manager.SimpleAuthManager",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": keys["api"],
                "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(keys["worker_logs"]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(keys["trigger_logs"]),
                # Runs come from the REST API (or the UI) only: no scheduled run competes.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
                "GX_ANALYTICS_ENABLED": "False",
                "AWS_EC2_METADATA_DISABLED": "true",
                "NO_PROXY": "*",
            }
        )
        env.update(self.env)
        return env

    @property
    def _passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def _airflow(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).parent / "airflow"), *args]

    def cli(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this stack's home and DB (output captured)."""
        return subprocess.run(
            self._airflow(*args),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, timeout: float = 240.0) -> AirflowStack:
        """Migrate the DB, start the components, return once they are healthy."""
        if self.parallelism < 2:
            raise ValueError("parallelism must be at least 2, so mapped tasks can run side by side")
        unknown = set(self.components) - set(COMPONENTS)
        if unknown or "api-server" not in self.components:
            raise ValueError(f"components must include api-server, among {COMPONENTS}")
        began = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.port = self.port or free_port(self.host)
        self._passwords_file.write_text(json.dumps({USERNAME: self.password}))
        env = self.environment()
        with (self.log_dir / "db-migrate.log").open("wb") as out:
            migrated = subprocess.run(
                self._airflow("db", "migrate"), env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.timings["db_migrate_s"] = time.monotonic() - began
        if migrated.returncode != 0:
            raise AirflowStackError(f"airflow db migrate failed\n{self.tails()}")
        try:
            for name in (c for c in COMPONENTS if c in self.components):
                args = [name]
                if name == "api-server":
                    args += ["--host", self.host, "--port", str(self.port), "--workers", "1"]
                log = (self.log_dir / f"{name}.log").open("ab")
                self._logs.append(log)
                self.processes[name] = subprocess.Popen(
                    self._airflow(*args),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, killed as one at stop()
                )
            self._wait_healthy(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["start_s"] = time.monotonic() - began
        return self

    def _wait_healthy(self, deadline: float) -> None:
        wanted = ["metadatabase"] + [c.replace("-", "_") for c in self.components]
        wanted.remove("api_server")  # it answers the health check itself
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            if all((health.get(part) or {}).get("status") == "healthy" for part in wanted):
                return
            time.sleep(0.5)
        raise AirflowStackError(f"the stack was not healthy in time: {health}\n{self.tails()}")

    def _check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise AirflowStackError(f"stack processes exited: {dead}\n{self.tails()}")

    def token(self) -> str:
        """A JWT for the admin user, from the simple auth manager's ``POST /auth/token``."""
        if self._token is None:
            response = httpx.post(
                f"{self.url}/auth/token",
                json={"username": USERNAME, "password": self.password},
                timeout=30,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token

    def client(self, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client on the api-server (paths from its root), logged in as admin."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the REST API (``/api/v2`` + ``path``) as admin; the decoded JSON response."""
        with self.client(timeout=30.0) as client:
            response = client.request(method, f"/api/v2{path}", **kwargs)
        if response.is_error:
            raise AirflowStackError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 120.0) -> None:
        """Wait until the dag-processor has serialized ``dag_ids``; fail on import errors."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise AirflowStackError(f"DAG import errors: {errors}")
            dags = self.api("GET", "/dags", params={"limit": 100})["dags"]
            if set(dag_ids) <= {d["dag_id"] for d in dags}:
                return
            time.sleep(0.5)
        raise AirflowStackError(f"DAGs {list(dag_ids)} not parsed in time\n{self.tails()}")

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> str:
        """``POST /dags/{dag_id}/dagRuns`` with ``conf``; returns the run id."""
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll the run until it succeeds or fails; the run's JSON."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL_RUN_STATES:
                return run
            time.sleep(0.5)
        raise AirflowStackError(f"run {dag_id}/{run_id} still {run.get('state')}\n{self.tails()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return list(self.api("GET", path, params={"limit": 1000})["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, attempt: int = 1) -> Path:
        """Where the default ``log_filename_template`` puts an unmapped task's log."""
        run = self.task_log_dir / f"dag_id={dag_id}" / f"run_id={run_id}"
        return run / f"task_id={task_id}" / f"attempt={attempt}.log"

    def tails(self, lines: int = 40) -> str:
        """The last ``lines`` of each process's log, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} (last {len(text)} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM each process group and every descendant, then SIGKILL what is left."""
        import psutil

        doomed: list[psutil.Process] = []
        for popen in self.processes.values():
            try:
                root = psutil.Process(popen.pid)
                doomed += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for name in reversed(list(self.processes)):
            _signal_group(self.processes[name], signal.SIGTERM)
        for proc in doomed:
            _signal(proc, signal.SIGTERM)
        _, alive = psutil.wait_procs(doomed, timeout=grace)
        for popen in self.processes.values():
            _signal_group(popen, signal.SIGKILL)
        for proc in alive:
            _signal(proc, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        for popen in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def leftovers(self) -> list[int]:
        """Pids of live processes running with this stack's ``AIRFLOW_HOME`` (none after stop)."""
        import psutil

        home = str(self.home)
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                live = proc.status() != psutil.STATUS_ZOMBIE
                if live and proc.environ().get("AIRFLOW_HOME") == home:
                    found.append(proc.pid)
        return found

    def __enter__(self) -> AirflowStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the process group ``popen`` leads (start_new_session), if it still exists."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def _signal(proc: Any, sig: signal.Signals) -> None:
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)
