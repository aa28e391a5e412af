"""``qode-lake validate`` and the landing task reach the same verdict on an oversized body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import ingest_chunk
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.quality.cli import main as validate
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"


def test_the_body_cap_gives_the_same_verdicts_in_cli_and_pipeline(
    tmp_path: Path,
    sandbox_factory,
    monkeypatch: pytest.MonkeyPatch,
    s3_client,
    s3_bucket,
    capsys: pytest.CaptureFixture[str],
):
    dataset = SandboxDataset(seed=5, count=6, broken_share=0.0, alias_share=0.0)
    dataset.dump(tmp_path)
    by_size = sorted(dataset.ids, key=lambda i: len(dataset.body(i)))
    small, large = by_size[0], by_size[-1]
    cap = len(dataset.body(small))  # the small body is exactly at the cap, the large one over
    assert len(dataset.body(large)) > cap

    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_body_bytes=cap)
    writer = LakeWriter(
        s3_client, s3_bucket, PREFIX, dag_id="d", run_id="r", chunk="chunk-0", run_date="2025-11-30"
    )
    with QodeHook("qode_default") as hook:
        ingest_chunk(hook, writer, [small, large])
    layout = LakeLayout(PREFIX)
    lake = {}
    for interview_id in (small, large):
        index = s3_client.get_object(Bucket=s3_bucket, Key=layout.index_key(interview_id))
        lake[interview_id] = json.loads(index["Body"].read())["state"]

    files = [str(tmp_path / f"{i}.json") for i in (small, large)]
    validate([*files, "--max-body-bytes", str(cap)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cli = {Path(line["file"]).stem: line["verdict"] for line in lines}

    assert lake == cli == {small: "published", large: "quarantined"}
    assert lines[1]["failed_rules"] == ["QR-PARSE"]
