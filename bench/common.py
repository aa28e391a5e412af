"""Shared pieces of the end-to-end benchmarks: environment, servers, measuring a child process.

Every contestant runs in its own fresh interpreter (``python -m bench.e2e --child ...``) so that
its peak RSS (``ru_maxrss``) and CPU time belong to it alone. The stand-in API and moto's S3
server each run in their own process too, so neither shares the client's GIL.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from airflow_provider_qode.sandbox.airflow_stack import free_port
from airflow_provider_qode.sandbox.server import stop_process

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
QODE_CONN_ID = "qode_bench"
HTTP_CONN_ID = "qode_http_bench"
AWS_CONN_ID = "aws_bench"

#: Set before botocore or Airflow is imported anywhere in the benchmark's processes.
BASE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "NO_PROXY": "*",
}


def apply_env() -> None:
    os.environ.update(BASE_ENV)
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".local" / "bench-airflow-home"))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        os.environ.pop(proxy, None)


@dataclass(frozen=True)
class Dataset:
    """The stand-in's dataset flags: fixed seed, realistic sizes."""

    seed: int = 20240601
    count: int = 10_000
    broken_share: float = 0.05
    questions: int = 5
    agents: int = 3
    criteria: int = 4
    transcript_lines: int = 40
    asset_bytes: int = 50_000
    latency_ms: float = 100.0

    def sandbox_args(self) -> list[str]:
        return [
            "--token",
            TOKEN,
            "--seed",
            str(self.seed),
            "--count",
            str(self.count),
            "--broken-share",
            str(self.broken_share),
            "--questions",
            str(self.questions),
            "--agents",
            str(self.agents),
            "--criteria",
            str(self.criteria),
            "--transcript-lines",
            str(self.transcript_lines),
            "--asset-bytes",
            str(self.asset_bytes),
            "--latency-ms",
            str(self.latency_ms),
            "--prewarm",
        ]

    def ids(self) -> list[str]:
        from airflow_provider_qode.sandbox.generator import SandboxDataset

        kwargs = asdict(self)
        kwargs.pop("latency_ms")
        return SandboxDataset(**kwargs).ids


@contextmanager
def sandbox(dataset: Dataset) -> Iterator[str]:
    """The stand-in API in its own process; yields its base URL (``.../api/v1``)."""
    from airflow_provider_qode.sandbox.server import sandbox_process

    with sandbox_process(dataset.sandbox_args(), timeout=600) as base_url:
        yield base_url


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process (``python -m moto.server``); yields its endpoint."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **BASE_ENV},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        stop_process(proc)


def connection_env(base_url: str, s3_endpoint: str, **qode_extra: Any) -> dict[str, str]:
    """Airflow connections (as ``AIRFLOW_CONN_*`` env vars) for all three contestants."""
    root = base_url.split("/api/v1")[0]
    return {
        f"AIRFLOW_CONN_{QODE_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "qode",
                "host": base_url,
                "password": TOKEN,
                "extra": {"allowed_asset_hosts": ["127.0.0.1"], **qode_extra},
            }
        ),
        f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "http",
                "host": root,
                "extra": {
                    "Authorization": f"Bearer {TOKEN}",
                    "Accept": "application/json",
                },
            }
        ),
        f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
        "BENCH_S3_ENDPOINT": s3_endpoint,
        "BENCH_BASE_URL": base_url,
    }


def s3_client(endpoint: str, pool: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(max_pool_connections=pool, retries={"max_attempts": 3, "mode": "standard"}),
    )


def rss_mib() -> float:
    """Peak RSS of this process so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_child(
    module: str, args: Sequence[str], env: Mapping[str, str], timeout: float = 900
) -> dict[str, Any]:
    """Run ``python -m <module> --child ...`` and return the JSON it prints last.

    ``machine_busy`` is the share of the machine's CPU time in use while the child ran (every
    process: the child, the stand-in, moto): near 1.0 the run was CPU-bound, not latency-bound.
    """
    busy_before, total_before = _machine_cpu()
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **BASE_ENV, **env},
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{module} {' '.join(args)} printed no result:\n{proc.stderr[-4000:]}")
    busy_after, total_after = _machine_cpu()
    result = dict(json.loads(lines[-1]))
    result["machine_busy"] = round(
        (busy_after - busy_before) / max(total_after - total_before, 1e-9), 2
    )
    return result


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of every CPU since boot, from ``/proc/stat``; zeros elsewhere."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    total = sum(fields[:8])  # user .. steal
    idle = fields[3] + fields[4]  # idle + iowait
    return float(total - idle), float(total)


def machine_info() -> dict[str, Any]:
    import platform
    from importlib.metadata import version

    def ver(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "n/a"

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "versions": {
            name: ver(name)
            for name in (
                "airflow-provider-qode",
                "apache-airflow",
                "apache-airflow-providers-http",
                "apache-airflow-providers-amazon",
                "great-expectations",
                "httpx",
                "boto3",
                "moto",
                "pandas",
                "pydantic",
                "uvicorn",
            )
        },
    }
