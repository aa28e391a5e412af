"""What a landing chunk logs on the way (real stand-in, real S3) and what its HTML report names."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from airflow_provider_qode.hooks.qode import QodeAsyncClient, QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.progress import fetch_with_progress

LOGGER = "airflow_provider_qode.ingest"
GATE_LOGGER = "airflow_provider_qode.quality.gate"
PREFIX = "lake"


@pytest.fixture
def landed(sandbox_reset, sandbox_dataset, qode_conn_env, s3_client, s3_bucket, caplog):
    """20 ids landed as one chunk; one answered 429 first, one 503 first."""
    ids = sandbox_dataset.ids[:20]
    sandbox_reset.script(ids[0], [{"status": 429, "retry_after": 0}])
    sandbox_reset.script(ids[1], [503])
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.set_level(logging.INFO, logger=GATE_LOGGER)
    writer = LakeWriter(
        s3_client,
        s3_bucket,
        PREFIX,
        dag_id="qode_dag",
        run_id="scheduled__2025-11-30",
        chunk="chunk-3",
        run_date="2025-11-30",
    )
    with QodeHook(qode_conn_env) as hook:
        summary = ingest_chunk(hook, writer, ids)
    lines = [r.getMessage() for r in caplog.records if r.name in (LOGGER, GATE_LOGGER)]
    return ids, summary, summary.to_xcom(s3_bucket), lines


def _counts(lines: list[str], verb: str) -> list[tuple[int, int]]:
    found = [re.match(rf"{verb} (\d+)/(\d+) ", line) for line in lines]
    return [(int(m[1]), int(m[2])) for m in found if m]


def test_each_stage_logs_progress_then_the_chunk_says_where_its_reports_are(landed):
    ids, summary, xcom, lines = landed
    fetched = _counts(lines, "Fetched")
    # Progress up to the whole chunk, never more than a line per 10% (plus heartbeats).
    assert fetched[-1] == (len(ids), len(ids))
    assert [k for k, _ in fetched] == sorted(k for k, _ in fetched)
    assert 2 <= len(fetched) <= 12
    last_fetch = next(line for line in reversed(lines) if line.startswith("Fetched 20/20"))
    assert "retries 2, 429 answers 1, 5xx answers 1" in last_fetch

    gated = summary.published + summary.quarantined
    assert any(line.startswith(f"quality gate: {gated} interviews, ") for line in lines)
    landed_counts = _counts(lines, "Landed")
    assert landed_counts[-1] == (gated, gated)

    assert f"Manifest: {xcom['manifest_uri']}" in lines
    html, json_uri = sorted(xcom["quality_report_uris"], key=lambda u: not u.endswith(".html"))
    assert f"Quality report (HTML): {html}" in lines
    assert f"Quality report (JSON): {json_uri}" in lines
    [timings] = [line for line in lines if line.startswith("Stage timings: ")]
    assert re.fullmatch(
        r"Stage timings: fetch [\d.]+ s, validate [\d.]+ s, land [\d.]+ s, total [\d.]+ s",
        timings,
    )
    # In order: fetch, gate, land, then where things are.
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(prefix))
        for prefix in (
            "Fetching 20",
            "Fetched 20/20",
            f"Checking {gated} interviews against the quality rules",
            "quality gate:",
            "Landed",
            "Manifest",
        )
    ]
    assert order == sorted(order)


def test_the_html_report_names_the_run_and_each_interviews_lake_key(
    landed, s3_client, s3_bucket, sandbox_dataset
):
    ids, _, xcom, _ = landed
    html_uri = next(u for u in xcom["quality_report_uris"] if u.endswith(".html"))
    key = html_uri.removeprefix(f"s3://{s3_bucket}/")
    page = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read().decode()
    for value in ("qode_dag", "scheduled__2025-11-30", "chunk-3", "2025-11-30"):
        assert f"<code>{value}</code>" in page
    assert f"<code>s3://{s3_bucket}/{PREFIX}/</code>" in page
    # Every id with the key its interview.json landed at: a partition or quarantine.
    for interview_id in ids:
        expected = sandbox_dataset.expected(interview_id)
        match = re.search(
            rf"<code>{re.escape(interview_id)}</code></td><td>.*?</td><td><code>([^<]+)</code>",
            page,
        )
        assert match, interview_id
        folder = "interviews/dt=" if expected.verdict == "published" else "quarantine/dt="
        assert match[1].startswith(f"{PREFIX}/{folder}"), (interview_id, match[1])
        assert match[1].endswith(f"/{interview_id}/interview.json")
    assert "<details><summary>Great Expectations results" in page
    assert "<details open" not in page


def test_a_fetch_waiting_out_a_retry_after_still_logs(
    sandbox_reset, sandbox_dataset, qode_conn_env, caplog
):
    [interview_id] = sandbox_dataset.ids[:1]
    # One request that must wait 1 s: heartbeats due every 0.1 s come first, in deadline order.
    sandbox_reset.script(interview_id, [{"status": 429, "retry_after": 1}])
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def fetch():
        async with QodeAsyncClient(QodeHook(qode_conn_env).config) as client:
            return await fetch_with_progress(client, [interview_id], interval=0.2)

    [result] = asyncio.run(fetch())
    assert result.ok
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any(line.startswith("Fetched 0/1 (0%); retries 0, 429 answers 1") for line in lines)
    assert lines[-1].startswith("Fetched 1/1 (100%); retries 1, 429 answers 1, 5xx answers 0")
