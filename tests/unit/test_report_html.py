"""The HTML quality report: names its run, gives each interview's lake key, escapes everything,
keeps rule ids whole and the GX results collapsed."""

from __future__ import annotations

import json
import re

from airflow_provider_qode.quality.gate import BatchVerdict, InterviewVerdict, Reason
from airflow_provider_qode.quality.report import full_results, render_html
from airflow_provider_qode.quality.rules import Severity

CONTEXT = {
    "DAG": "qode_interview_ingestion",
    "run": "manual__2025-11-21T00:00:00+00:00<script>",
    "chunk": "chunk-2",
    "lake": "s3://lake/qode/",
    "run date": "2025-11-21",
}


def _batch() -> BatchVerdict:
    clean = InterviewVerdict(0, "a_1", "published", (), (), (), requested_id="a_1")
    warned = InterviewVerdict(
        1,
        "b_2",
        "published",
        (),
        ("QR-LIFE-07",),
        (Reason("QR-LIFE-07", Severity.WARN, "interview_id does not end with _x"),),
        requested_id="b_2",
    )
    failed = InterviewVerdict(
        2,
        "c_3",
        "quarantined",
        ("QR-SCORE-01",),
        (),
        (Reason("QR-SCORE-01", Severity.ERROR, "aggregated_score = 140 <b>"),),
        requested_id="c_3",
    )
    gx = {"interviews": {"results": [{"success": False, "expectation_config": {"meta": {}}}]}}
    return BatchVerdict([clean, warned, failed], gx_results=gx, table_rows={"interviews": 3})


LOCATIONS = {
    "a_1": "qode/interviews/dt=2025-11-20/role=data-engineer/a_1/interview.json",
    "b_2": "qode/interviews/dt=2025-11-20/role=_82a4d4f6b483/b_2/interview.json",
    "c_3": "qode/quarantine/dt=2025-11-21/c_3/interview.json",
}


def test_the_page_names_the_run_and_every_interviews_lake_key():
    page = render_html(_batch(), context=CONTEXT, locations=LOCATIONS)
    for label, value in CONTEXT.items():
        if "<" not in value:
            assert f"<dt>{label}</dt><dd><code>{value}</code></dd>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;" in page  # reasons are escaped too
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>.*?</td><td><code>([^<]+)</code>", page)
    # Findings first (errors, then warnings), each with the key it landed at.
    assert rows == [(i, LOCATIONS[i]) for i in ("c_3", "b_2", "a_1")]


def test_rule_ids_never_wrap_and_gx_results_start_collapsed():
    page = render_html(_batch(), context=CONTEXT, locations=LOCATIONS)
    assert ".rule{white-space:nowrap}" in page
    assert "<code class='rule'>QR-SCORE-01</code>" in page
    assert not re.search(r"<code>QR-[A-Z]+", page)  # every rule id carries the class
    details = page.index("<details><summary>Great Expectations results (1 expectations, 1 failed)")
    assert page.index("<h3>interviews (3 rows)</h3>") > details
    assert "<details open" not in page


def test_without_lake_details_the_page_has_no_key_column():
    page = render_html(_batch())
    assert "lake key" not in page and "<dl" not in page
    results = full_results(_batch(), CONTEXT, LOCATIONS)
    assert results["context"] == CONTEXT and results["locations"] == LOCATIONS
    json.dumps(results)
