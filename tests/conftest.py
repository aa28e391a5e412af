"""Test-wide environment: everything local, fake credentials, a throwaway Airflow home.

Set before Airflow or botocore is imported, so neither ever looks beyond loopback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="qode-airflow-home-"))

os.environ.update(
    {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "GX_ANALYTICS_ENABLED": "False",
        "NO_PROXY": "*",
    }
)
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_proxy, None)

EXAMPLES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "qode-api" / "examples"

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.s3",
]
