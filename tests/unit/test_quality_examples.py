"""The contract's examples get exactly the verdicts of verdicts.json, in-process and by CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_qode.quality.cli import main
from airflow_provider_qode.quality.gate import BatchVerdict, FetchedInterview, validate_batch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "examples"
VERDICTS: dict[str, dict[str, object]] = json.loads((EXAMPLES / "verdicts.json").read_text())
BODIES = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "verdicts.json")


def _expected(stem: str) -> tuple[str, list[str], list[str]]:
    e = VERDICTS[stem]
    return str(e["expect"]), list(e["failed_rules"]), list(e["warnings"])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def batch() -> BatchVerdict:
    return validate_batch([FetchedInterview(None, p.read_bytes(), source=p.name) for p in BODIES])


def test_every_example_has_a_verdict() -> None:
    assert {p.stem for p in BODIES} == set(VERDICTS)


@pytest.mark.parametrize("body", BODIES, ids=[p.stem for p in BODIES])
def test_example_verdict(body: Path, batch: BatchVerdict) -> None:
    v = batch.interviews[BODIES.index(body)]
    assert (v.verdict, list(v.failed_rules), list(v.warnings)) == _expected(body.stem)
    assert v.source == body.name
    # every finding is explained
    assert {r.rule_id for r in v.reasons} == {*v.failed_rules, *v.warnings}


def test_example_ids(batch: BatchVerdict) -> None:
    for body, v in zip(BODIES, batch.interviews, strict=True):
        if body.stem.startswith("fails_QR_PARSE"):
            assert v.interview_id == f"<{body.name}>"
        else:
            assert v.interview_id == json.loads(body.read_bytes())["interview_id"]


def _run_cli(*args: str, module: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False"}
    # Airflow's unit-test mode announces itself on stdout, which carries the JSON lines.
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
    )


def _check_lines(stdout: str) -> None:
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [Path(line["file"]).stem for line in lines] == [p.stem for p in BODIES]
    for line in lines:
        expected = _expected(Path(line["file"]).stem)
        assert (line["verdict"], line["failed_rules"], line["warnings"]) == expected
        assert set(line) == {
            "file",
            "interview_id",
            "verdict",
            "failed_rules",
            "warnings",
            "reasons",
        }


def _cli_module() -> str:
    """The project CLI once the sandbox command exists; until then the validate command alone."""
    if importlib.util.find_spec("airflow_provider_qode.sandbox.cli") is not None:
        return "airflow_provider_qode.cli"
    return "airflow_provider_qode.quality.cli"


def test_cli_folder_with_report(tmp_path: Path) -> None:
    module = _cli_module()
    prefix = ("validate",) if module == "airflow_provider_qode.cli" else ()
    proc = _run_cli(*prefix, str(EXAMPLES), "--report", str(tmp_path), module=module)
    assert proc.returncode == 1, proc.stderr
    _check_lines(proc.stdout)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quarantined"] == sum(1 for v in VERDICTS.values() if v["expect"] != "published")
    json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_usage_errors(tmp_path: Path) -> None:
    proc = _run_cli(str(tmp_path / "missing.json"), module="airflow_provider_qode.quality.cli")
    assert proc.returncode == 2
    assert "no such file" in proc.stderr
    assert main([str(tmp_path)]) == 2  # a folder without .json files


def test_cli_all_published_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    valid = [str(p) for p in BODIES if p.stem.startswith("valid_")]
    assert main(valid) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["verdict"] for line in lines] == ["published"] * len(valid)


def test_cli_quarantined_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(EXAMPLES / "fails_QR_SCORE_02.json")]) == 1
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["failed_rules"] == ["QR-SCORE-02"]
    assert "criteria.criterion_0.score = 7 is outside [0, 5]" in line["reasons"][0]["message"]
