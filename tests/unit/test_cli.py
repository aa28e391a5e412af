"""``qode-lake``: plain help text, every flag documented with its default, version, validate."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_qode import __version__
from airflow_provider_qode.cli import HelpFormatter, build_parser
from airflow_provider_qode.hooks.connection import QodeConnectionConfig
from airflow_provider_qode.quality.cli import main as validate

EXAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "examples"
QODE_LAKE = Path(sys.executable).parent / "qode-lake"
MARKUP = ("``", ":func:", ":class:", ":mod:", ":meth:", ":data:")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_help_is_plain_text_and_version_is_the_packages():
    top = subprocess.run([QODE_LAKE, "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "validate" in top.stdout and "sandbox" in top.stdout
    pages = [top.stdout, *(p.format_help() for p in _subparsers().values())]
    for page in pages:
        assert not [m for m in MARKUP if m in page], page
    version = subprocess.run([QODE_LAKE, "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.strip() == f"qode-lake {__version__}"
    assert __version__ == importlib.metadata.version("airflow-provider-qode")


@pytest.mark.parametrize("command", ["sandbox", "validate"])
def test_every_option_has_help_that_states_its_default(command: str):
    parser = _subparsers()[command]
    formatter = HelpFormatter(prog=command)
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert options
    for action in options:
        assert action.help, action.option_strings
        text = formatter._get_help_string(action) % {"default": action.default}
        assert "(default: " in text, action.option_strings
    # The page shows each default next to its flag.
    page = " ".join(parser.format_help().split())
    for action in options:
        if action.default not in (None, False):
            assert f"(default: {action.default})" in page, action.option_strings


def test_validate_prints_a_totals_line(capsys: pytest.CaptureFixture[str]):
    files = [EXAMPLES / "valid_ci_v2.json", EXAMPLES / "fails_QR_COV_02.json"]
    assert validate([str(f) for f in files]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["verdict"] for line in out.splitlines()] == [
        "published",
        "quarantined",
    ]
    assert err.strip().splitlines()[-1] == (
        "2 files: 1 published, 1 quarantined; failed rules: QR-COV-02=1"
    )


def test_validate_caps_bodies_like_the_pipeline(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    parser = _subparsers()["validate"]
    # The same default as the connection the landing task reads.
    assert parser.get_default("max_body_bytes") == QodeConnectionConfig().max_body_bytes
    body = EXAMPLES / "valid_ci_v2.json"
    size = body.stat().st_size
    assert validate([str(body), "--max-body-bytes", str(size)]) == 0  # at the cap: read
    capsys.readouterr()
    small = EXAMPLES / "fails_QR_COV_02.json"
    cap = ["--max-body-bytes", str(size - 1), "--report", str(tmp_path)]
    assert small.stat().st_size < size - 1
    assert validate([str(body), str(small), *cap]) == 1
    out, err = capsys.readouterr()
    # The report covers what reached the gate: the small file only.
    assert json.loads((tmp_path / "summary.json").read_text())["interviews"] == 1
    out = out.splitlines()[0]
    line = json.loads(out)
    assert line["failed_rules"] == ["QR-PARSE"] and line["verdict"] == "quarantined"
    assert (
        f"body of {size} bytes is over the {size - 1}-byte limit" in line["reasons"][0]["message"]
    )
    assert f"(1 over {size - 1} bytes)" in err
