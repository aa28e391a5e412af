"""Batches: parse failures beside good bodies, 200+ interviews in one GX run, reports."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.models import parse_interview
from airflow_provider_qode.quality import gate
from airflow_provider_qode.quality.gate import BatchVerdict, FetchedInterview, validate_batch
from airflow_provider_qode.quality.report import (
    full_results,
    html_report,
    json_report,
    json_summary,
    render_html,
    summary,
    write_reports,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
BASE: dict[str, Any] = json.loads((EXAMPLES / "valid_pf_domain_3p_v4.json").read_text())


def _doc(n: int) -> dict[str, Any]:
    """A valid copy of the base example with its own ids."""
    doc = copy.deepcopy(BASE)
    candidate = str(uuid.UUID(int=n + 1))
    doc["candidate_id"] = candidate
    doc["interview_id"] = f"{uuid.UUID(int=10**6 + n)}_{candidate}"
    return doc


def _item(doc: dict[str, Any]) -> FetchedInterview:
    return FetchedInterview(doc["interview_id"], json.dumps(doc).encode())


# Breakages keyed by name: (mutation, error rules, warnings, reason fragment)
def _criterion_score(q: int, a: int, key: str):
    def run(doc: dict[str, Any]) -> None:
        agent = doc["agent_response_summary"][q]["agents"][a]
        c = agent["criteria"][key]
        c["score"] = 5.5
        c["weighted"] = 5.5 * c["weight"]
        agent["total_weighted_score"] = sum(x["weighted"] for x in agent["criteria"].values())

    return run


MIXED_BREAKS: dict[str, tuple[Any, tuple[str, ...], tuple[str, ...], str]] = {
    # three different rows of the criteria table, in different interviews and places
    "crit_a": (
        _criterion_score(0, 1, "criterion_0"),
        ("QR-SCORE-02",),
        (),
        "agent_response_summary[0].agents[1].criteria.criterion_0.score = 5.5",
    ),
    "crit_b": (
        _criterion_score(1, 0, "criterion_1"),
        ("QR-SCORE-02",),
        (),
        "agent_response_summary[1].agents[0].criteria.criterion_1.score = 5.5",
    ),
    "crit_c": (
        _criterion_score(1, 1, "criterion_1"),
        ("QR-SCORE-02",),
        (),
        "agent_response_summary[1].agents[1].criteria.criterion_1.score = 5.5",
    ),
    "type": (
        lambda d: d.update(interview_type="NOPE"),
        ("QR-ENUM-01",),
        (),
        'interview_type = "NOPE"',
    ),
    "dup": (
        lambda d: d.update(uncovered_domains=["X", "X"]),
        ("QR-COV-03",),
        (),
        'uncovered_domains[1] = "X"',
    ),
    "no_ci": (
        lambda d: d.update(overall_score_ci=None),
        (),
        ("QR-LIFE-06",),
        "overall_score_ci is missing",
    ),
    "two": (
        lambda d: d.update(result="Maybe", timestamp="yesterday"),
        ("QR-ENUM-04", "QR-LIFE-03"),
        (),
        'timestamp = "yesterday"',
    ),
}


def test_mixed_batch_of_240_in_one_gx_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    real = gate.run_suites

    def counting(tables: Any) -> Any:
        runs.append(1)
        return real(tables)

    monkeypatch.setattr(gate, "run_suites", counting)

    plan: dict[str, str] = {}
    items = []
    names = list(MIXED_BREAKS)
    for n in range(240):
        doc = _doc(n)
        if n % 7 == 3:
            name = names[(n // 7) % len(names)]
            MIXED_BREAKS[name][0](doc)
            plan[doc["interview_id"]] = name
        items.append(_item(doc))
    items.insert(100, FetchedInterview("parse-victim", b"<html>oops</html>"))

    batch = validate_batch(items)

    assert len(runs) == 1
    assert len(batch.interviews) == 241
    assert batch.table_rows["interviews"] == 240
    by_id = batch.by_id()
    assert by_id["parse-victim"].failed_rules == ("QR-PARSE",)
    for item, v in zip(items, batch.interviews, strict=True):
        assert v.interview_id == item.requested_id
        if item.requested_id == "parse-victim":
            continue
        name = plan.get(item.requested_id or "")
        if name is None:
            assert (v.verdict, v.failed_rules, v.warnings) == ("published", (), ()), v.reasons
            continue
        _, failed, warned, fragment = MIXED_BREAKS[name]
        assert (v.failed_rules, v.warnings) == (failed, warned), (name, v.reason_texts())
        assert any(fragment in r.message for r in v.reasons), (name, v.reason_texts())
        if name.startswith("crit_"):
            # exactly one failing criterion row, and it is this interview's own
            assert len(v.reasons) == 1
    assert sum(1 for v in batch.interviews if v.failed_rules == ("QR-SCORE-02",)) == sum(
        1 for name in plan.values() if name.startswith("crit_")
    )


def test_parse_failures_do_not_stop_the_batch() -> None:
    good = _doc(1)
    wrong_type = _doc(2)
    wrong_type["aggregated_score"] = "50"
    items = [
        FetchedInterview("html", b"<!DOCTYPE html><html><body>Bad gateway</body></html>"),
        FetchedInterview("truncated", json.dumps(_doc(3)).encode()[:500]),
        FetchedInterview("array", b"[1, 2, 3]"),
        FetchedInterview("wrong-type", json.dumps(wrong_type).encode()),
        FetchedInterview(None, b"\xff\xfe not utf-8", source="binary.json"),
        _item(good),
    ]
    batch = validate_batch(items)
    verdicts = batch.interviews
    for v in verdicts[:5]:
        assert (v.verdict, v.failed_rules, v.warnings) == ("quarantined", ("QR-PARSE",), ())
        assert len(v.reasons) == 1
    assert "HTML page" in verdicts[0].reasons[0].message
    assert "not JSON" in verdicts[1].reasons[0].message
    assert "list, not an object" in verdicts[2].reasons[0].message
    assert "aggregated_score" in verdicts[3].reasons[0].message
    assert verdicts[4].interview_id == "<binary.json>"
    assert verdicts[5].verdict == "published"
    assert verdicts[5].interview_id == good["interview_id"]


def test_only_parse_failures_needs_no_gx() -> None:
    batch = validate_batch([FetchedInterview("x", b"nope")])
    assert batch.interviews[0].failed_rules == ("QR-PARSE",)
    assert batch.gx_results == {}


def test_pre_parsed_model_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = _doc(5)
    doc["aggregated_score"] = 101
    doc["overall_score_ci"] = None
    raw = json.dumps(doc).encode()
    model = parse_interview(raw, doc["interview_id"])

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("parsed twice")

    monkeypatch.setattr(gate, "parse_interview", refuse)
    batch = validate_batch([FetchedInterview(doc["interview_id"], raw, interview=model)])
    v = batch.interviews[0]
    assert (v.failed_rules, v.warnings) == (("QR-SCORE-01",), ("QR-LIFE-06",))


def test_reasons_are_capped_per_rule() -> None:
    doc = _doc(7)
    for question in doc["agent_response_summary"]:
        for agent in question["agents"]:
            for c in agent["criteria"].values():
                c["weight"] = -1.0
                c["weighted"] = c["score"] * -1.0
                c["maximum_score"] = -5.0
            agent["total_weighted_score"] = sum(c["weighted"] for c in agent["criteria"].values())
            agent["maximum_score"] = sum(c["maximum_score"] for c in agent["criteria"].values())
    v = validate_batch([_item(doc)]).interviews[0]
    assert "QR-SCORE-02" in v.failed_rules
    score_02 = [r.message for r in v.reasons if r.rule_id == "QR-SCORE-02"]
    assert len(score_02) == gate.MAX_REASONS_PER_RULE + 1
    assert score_02[-1].startswith("... and ")


@pytest.fixture(scope="module")
def report_batch() -> BatchVerdict:
    bodies = sorted(p for p in EXAMPLES.glob("*.json") if p.name != "verdicts.json")
    evil = _doc(9)
    evil["interview_type"] = "<script>alert(1)</script>"
    items = [FetchedInterview(None, p.read_bytes(), source=p.name) for p in bodies]
    items.append(_item(evil))
    return validate_batch(items)


def test_summary_is_small_and_json(report_batch: BatchVerdict) -> None:
    s = summary(report_batch, top_n=3)
    text = json.dumps(s)
    assert len(text) < 4000
    assert s["interviews"] == len(report_batch.interviews)
    assert s["published"] + s["quarantined"] == s["interviews"]
    assert s["failed_rules"]["QR-PARSE"] == 1
    assert s["warnings"]["QR-LIFE-06"] == 2
    assert len(s["worst_offenders"]) == 3
    assert "raw" not in text and "agent_response_summary" not in text
    assert s["gx"]["failed_expectations"] > 0


def test_full_results_and_html(report_batch: BatchVerdict, tmp_path: Path) -> None:
    full = json.loads(json.dumps(full_results(report_batch)))  # strictly JSON-serialisable
    assert set(full["gx_results"]) >= {"interviews", "criteria", "agents"}
    meta = [
        r["expectation_config"]["meta"] for s in full["gx_results"].values() for r in s["results"]
    ]
    assert all(m["rule_id"].startswith("QR-") for m in meta)
    html = render_html(report_batch)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "QR-SCORE-02" in html
    assert json.loads(json_summary(report_batch)) == summary(report_batch)
    assert json.loads(json_report(report_batch))["summary"]["interviews"] == 24
    assert html_report(report_batch).startswith(b"<!DOCTYPE html>")
    paths = write_reports(report_batch, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"summary.json", "results.json", "report.html"}


def test_sandbox_dataset_agrees_when_available() -> None:
    """Cross-check against the sandbox generator's own expected verdicts (built independently)."""
    generator = pytest.importorskip("airflow_provider_qode.sandbox.generator")
    dataset = generator.SandboxDataset(seed=11, count=250, broken_share=0.4)
    batch = validate_batch([FetchedInterview(i, dataset.body(i)) for i in dataset.ids])
    mismatches = []
    for interview_id, v in zip(dataset.ids, batch.interviews, strict=True):
        e = dataset.expected(interview_id)
        if (v.verdict, list(v.failed_rules), list(v.warnings)) != (
            e.verdict,
            e.failed_rules,
            e.warnings,
        ):
            mismatches.append((interview_id, e.to_dict(), v.reason_texts()))
    assert not mismatches, mismatches[:3]
