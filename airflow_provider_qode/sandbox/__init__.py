"""A local stand-in for the Qode API: deterministic payloads (``generator``) and a real HTTP
server with faults on demand (``server``), for tests, the demo and the benchmarks.

Names are imported lazily so that ``qode-lake --help`` does not pay for uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_qode.sandbox.generator import (
        Expected,
        PayloadSizes,
        SandboxDataset,
        blob_sha256,
        make_png,
    )
    from airflow_provider_qode.sandbox.server import (
        FaultConfig,
        SandboxAdmin,
        SandboxServer,
        run_sandbox_process,
        sandbox_process,
    )

_EXPORTS = {
    "Expected": "generator",
    "PayloadSizes": "generator",
    "SandboxDataset": "generator",
    "blob_sha256": "generator",
    "make_png": "generator",
    "FaultConfig": "server",
    "SandboxAdmin": "server",
    "SandboxServer": "server",
    "run_sandbox_process": "server",
    "sandbox_process": "server",
}

__all__ = [
    "Expected",
    "FaultConfig",
    "PayloadSizes",
    "SandboxAdmin",
    "SandboxDataset",
    "SandboxServer",
    "blob_sha256",
    "make_png",
    "run_sandbox_process",
    "sandbox_process",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
