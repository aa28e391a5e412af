"""The Qode connection in a real Airflow 3.3 api-server: its form metadata, the Test button, and
the form itself in a real browser (Admin -> Connections -> Add)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_qode.hooks.connection import EXTRA_FIELDS
from airflow_provider_qode.sandbox.server import SandboxServer
from tests.fixtures.airflow_api import AirflowApiServer
from tests.fixtures.sandbox import SANDBOX_TOKEN

pytestmark = pytest.mark.slow


def _qode_meta(server: AirflowApiServer) -> dict[str, Any]:
    with server.client() as client:
        response = client.get("/ui/connections/hook_meta")
    response.raise_for_status()
    [meta] = [m for m in response.json() if m["connection_type"] == "qode"]
    return dict(meta)


def test_hook_meta_serves_the_qode_form(
    airflow_api_server: AirflowApiServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    meta = _qode_meta(airflow_api_server)
    out = tmp_path_factory.getbasetemp() / "qode_hook_meta.json"
    out.write_text(json.dumps(meta, indent=2))  # kept for a human to read

    assert meta["hook_name"] == "Qode"
    assert meta["hook_class_name"] == "airflow_provider_qode.hooks.qode.QodeHook"
    fields = meta["standard_fields"]
    assert fields["host"]["title"] == "API base URL"
    assert fields["password"]["title"] == "API token"
    assert {name for name, f in fields.items() if f and f["hidden"]} == {
        "login",
        "url_schema",
        "port",
    }
    extras = meta["extra_fields"]
    assert set(extras) == set(EXTRA_FIELDS)
    for key, field in EXTRA_FIELDS.items():
        assert extras[key]["value"] == field.default, key
        assert extras[key]["schema"]["title"] == field.label
        assert extras[key]["description"] == field.description


def test_test_button_reaches_the_api_and_checks_the_token(
    airflow_api_server: AirflowApiServer, sandbox: SandboxServer
) -> None:
    body = {"connection_id": "qode_probe", "conn_type": "qode", "host": sandbox.base_url}
    with airflow_api_server.client() as client:
        good = client.post("/api/v2/connections/test", json={**body, "password": SANDBOX_TOKEN})
        bad = client.post("/api/v2/connections/test", json={**body, "password": "wrong-token"})
    assert good.status_code == 200, good.text
    assert good.json()["status"] is True, good.json()
    assert bad.status_code == 200, bad.text
    assert bad.json()["status"] is False
    assert "401" in bad.json()["message"] or "token" in bad.json()["message"].lower()
