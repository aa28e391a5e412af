"""Apache Airflow provider for Qode AI interviews."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point group ``apache_airflow_provider``).

    Kept free of heavy imports: Airflow calls it on every ``import airflow``, and the connection
    module it reads the form from imports only the standard library.
    """
    from airflow_provider_qode.hooks.connection import connection_form

    return {
        "package-name": "airflow-provider-qode",
        "name": "Qode",
        "description": "Fetch Qode AI-interview results, check them with Great Expectations, "
        "land them in S3 and curate them into Parquet tables.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Qode",
                "external-doc-url": "https://turing.gomu.ai/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Qode",
                "python-modules": ["airflow_provider_qode.hooks.qode"],
            }
        ],
        "operators": [
            {
                "integration-name": "Qode",
                "python-modules": [
                    "airflow_provider_qode.operators.interviews",
                    "airflow_provider_qode.operators.events",
                    "airflow_provider_qode.operators.curate",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Qode",
                "python-modules": ["airflow_provider_qode.sensors.report"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Qode",
                "python-modules": ["airflow_provider_qode.triggers.report"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_qode.hooks.qode.QodeHook",
                "hook-name": "Qode",
                "connection-type": "qode",
                **connection_form(),
            }
        ],
    }
