"""Test-wide environment: everything local, fake credentials, a throwaway Airflow home.

Set before Airflow or botocore is imported, so neither ever looks beyond loopback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
# conftest may be imported under two module names; keep one Airflow home per session.
_AIRFLOW_HOME = Path(
    os.environ.get("QODE_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="qode-airflow-home-")
)

os.environ.update(
    {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "QODE_TEST_AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "*",
    }
)
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)


pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.s3",
    "tests.fixtures.airflow_db",
    "tests.fixtures.airflow_stack",
    "tests.fixtures.airflow_api",
]
