"""``qode-lake suites export``: the gate's suites as GX suite JSON that a GX user can run as-is."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.cli import main
from airflow_provider_qode.quality.flatten import TABLES
from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch
from airflow_provider_qode.quality.rules import RULES
from airflow_provider_qode.quality.suite import CHECKS, CHECKS_BY_ID

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "data" / "examples"
VERDICTS: dict[str, dict[str, Any]] = json.loads((EXAMPLES / "verdicts.json").read_text())
DOC = ROOT / "docs" / "quality.md"


def _export(directory: Path, capsys: pytest.CaptureFixture[str]) -> list[Path]:
    assert main(["suites", "export", str(directory)]) == 0
    return [Path(line) for line in capsys.readouterr().out.splitlines()]


def test_export_writes_one_gx_suite_per_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import great_expectations as gx

    written = _export(tmp_path / "new" / "suites", capsys)
    assert [p.name for p in written] == [f"qode_{t}.json" for t in TABLES]
    context = gx.get_context(mode="ephemeral")
    seen: list[str] = []
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["name"] == path.stem
        for e in data["expectations"]:
            check = CHECKS_BY_ID[e["meta"]["check_id"]]
            assert e["meta"]["rule_id"] == check.rule
            assert e["type"] == re.sub(r"(?<!^)(?=[A-Z])", "_", check.expectation).lower()
            assert e["severity"] == ("critical" if check.severity == "error" else "warning")
            assert e["description"].startswith(f"{check.rule}: {RULES[check.rule].description}")
            assert ("row_condition" in e["kwargs"]) == bool(check.when)
            seen.append(check.id)
        # GX reads the file back into the same suite (adding it assigns ids)
        suite = context.suites.add(gx.ExpectationSuite(**data))
        reread = [
            {k: v for k, v in e.items() if k != "id"} for e in suite.to_json_dict()["expectations"]
        ]
        assert reread == data["expectations"]
    assert seen == [c.id for c in CHECKS]


def test_conditional_rule_is_a_gx_row_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (interviews, *_) = _export(tmp_path, capsys)
    expectations = json.loads(interviews.read_text())["expectations"]
    (result,) = [e for e in expectations if e["meta"]["check_id"] == "interviews.report_result"]
    assert result["type"] == "expect_column_values_to_not_be_null"
    assert result["kwargs"]["column"] == "result"
    assert result["kwargs"]["row_condition"] == {
        "type": "comparison",
        "column": {"name": "status_normalized"},
        "operator": "==",
        "parameter": "REPORT_GENERATED",
    }


def test_export_into_an_unwritable_place_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["suites", "export", str(blocker / "suites")]) == 2
    assert "qode-lake suites export:" in capsys.readouterr().err


def _snippet() -> str:
    text = DOC.read_text()
    match = re.search(r"<!-- gx-user-snippet -->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/quality.md lost its GX snippet"
    return match.group(1)


@pytest.mark.parametrize("example", ["fails_QR_COV_02", "fails_QR_LIFE_01", "valid_no_ci_v1"])
def test_docs_snippet_finds_what_the_gate_finds(
    example: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    _export(Path("suites"), capsys)
    body = EXAMPLES / f"{example}.json"
    shutil.copy(body, "interview.json")
    namespace: dict[str, Any] = {}
    exec(compile(_snippet(), str(DOC), "exec"), namespace)

    (gate,) = validate_batch([FetchedInterview(None, body.read_bytes())]).interviews
    expected = VERDICTS[example]
    assert namespace["failed"] == {*gate.failed_rules, *gate.warnings}
    assert namespace["failed"] == {*expected["failed_rules"], *expected["warnings"]}
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == repr(sorted(namespace["failed"]))
    if example == "fails_QR_COV_02":  # the output the docs show
        assert f"print(sorted(failed))  # {printed}" in _snippet()


#: The computed columns docs/quality.md lists as still read by an expectation, with the reason.
COMPUTED = {
    "weighted_error",
    "maximum_error",
    "total_sum_error",
    "maximum_sum_error",
    "duration_error",
    "interview_id_ok",
    "ends_with_candidate_id",
    "timestamp_calendar_ok",
    "total_core_domains_whole",
    "covered_core_domains_whole",
    "coverage_deficit",
}


def _columns(kwargs: Any) -> set[str]:
    return {kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs}


def test_docs_count_the_expectations_and_the_computed_ones() -> None:
    text = DOC.read_text()
    match = re.search(r"The gate's (\d+) expectations", text)
    assert match and int(match.group(1)) == len(CHECKS)
    computed = [c for c in CHECKS if _columns(c.kwargs) & COMPUTED]
    assert len(computed) == 12 and "Twelve expectations still read a value" in text
    table = text[text.index("| computed in `flatten.py` |") : text.index("The pair and range")]
    assert set(re.findall(r"`(\w+)`", table)) >= COMPUTED
    # a boolean computed in Python is one of the listed ones, never a hidden rule outcome
    booleans = {c.kwargs["column"] for c in CHECKS if c.kwargs.get("value_set") == [True]}
    assert booleans <= COMPUTED
