"""The provider's self-description: a malformed one breaks every ``import airflow``."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_qode import get_provider_info


def test_provider_info_matches_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == distribution("airflow-provider-qode").metadata["Name"]
    [conn] = info["connection-types"]
    assert conn["connection-type"] == "qode"
    assert conn["hook-class-name"] == "airflow_provider_qode.hooks.qode.QodeHook"


def test_entry_point_is_registered():
    eps = entry_points(group="apache_airflow_provider")
    [ep] = [e for e in eps if e.value.startswith("airflow_provider_qode")]
    assert ep.load() is get_provider_info


def test_every_module_named_in_provider_info_imports():
    import importlib

    info = get_provider_info()
    modules = {
        m
        for section in ("hooks", "operators", "sensors", "triggers")
        for item in info[section]
        for m in item["python-modules"]
    }
    for module in modules:
        importlib.import_module(module)


def _json_output(stdout: str) -> list[dict]:
    """The JSON list in the CLI's output (Airflow may print notices before it)."""
    [line] = [ln for ln in stdout.splitlines() if ln.startswith("[")]
    return json.loads(line)


def test_airflow_cli_lists_provider_and_hook():
    airflow_bin = Path(sys.executable).parent / "airflow"
    providers = subprocess.run(
        [str(airflow_bin), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    names = {p["package_name"] for p in _json_output(providers.stdout)}
    assert "airflow-provider-qode" in names
    hooks = subprocess.run(
        [str(airflow_bin), "providers", "hooks", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=180,
    )
    by_type = {h["connection_type"]: h for h in _json_output(hooks.stdout)}
    assert by_type["qode"]["class"] == "airflow_provider_qode.hooks.qode.QodeHook"


def test_connection_form_is_declared_from_the_extras_table():
    from airflow_provider_qode.hooks.connection import EXTRA_FIELDS

    [conn] = get_provider_info()["connection-types"]
    assert conn["hook-name"] == "Qode"
    behaviour = conn["ui-field-behaviour"]
    assert sorted(behaviour["hidden-fields"]) == ["login", "port", "schema"]
    assert behaviour["relabeling"] == {"host": "API base URL", "password": "API token"}
    fields = conn["conn-fields"]
    assert set(fields) == set(EXTRA_FIELDS)
    for key, field in EXTRA_FIELDS.items():
        assert fields[key]["schema"].get("default") == field.default, key
        assert fields[key]["label"] and fields[key]["description"], key
    assert fields["max_retries"]["schema"]["type"] == ["integer", "null"]
    assert fields["timeout"]["schema"]["type"] == ["number", "null"]
    assert fields["allowed_asset_hosts"]["schema"]["items"] == {"type": "string"}


def test_provider_info_imports_no_heavy_module():
    """Airflow calls get_provider_info() on every ``import airflow``: it must stay stdlib-only."""
    code = (
        "import sys, airflow_provider_qode as p; p.get_provider_info(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'httpx', 'pydantic'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
