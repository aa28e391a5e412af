"""The bucket's policy on every object: server-side encryption and S3Hook-style extra_args.

Checked object by object with ``head_object`` on moto's server, over a socket.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from airflow_provider_qode.lake.store import ObjectStore, write_args
from airflow_provider_qode.lake.writer import MIN_PART_SIZE, LakeWriter
from airflow_provider_qode.models import parse_interview
from airflow_provider_qode.operators.interviews import QodeInterviewsToS3Operator
from airflow_provider_qode.sandbox.generator import SandboxDataset
from tests.fixtures.sandbox import point_qode_conn

PREFIX = "lake"
DATASET = SandboxDataset(seed=5, count=8, broken_share=0.3, alias_share=0.0)
EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "examples" / "valid_ci_v2.json"


def every_key(s3_client, bucket: str) -> list[str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def encryption_of(s3_client, bucket: str, key: str) -> tuple[str | None, str | None]:
    head = s3_client.head_object(Bucket=bucket, Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


@pytest.fixture
def kms_key(s3_endpoint: str) -> str:
    kms = boto3.client("kms", endpoint_url=s3_endpoint, region_name="us-east-1")
    return kms.create_key(Description="qode lake")["KeyMetadata"]["Arn"]


@pytest.fixture
def lake_source(sandbox_factory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    DATASET.dump(tmp_path)
    server = sandbox_factory(tmp_path)
    point_qode_conn(monkeypatch, server.base_url, max_retries=1, timeout=5)
    return list(DATASET.ids)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"encryption": "aws:kms"}, ("aws:kms", "KEY"), id="kms-key"),
        pytest.param(
            {"s3_extra_args": {"ServerSideEncryption": "AES256"}}, ("AES256", None), id="extra-args"
        ),
    ],
)
def test_every_object_of_a_run_is_encrypted(
    lake_source, s3_client, s3_bucket, aws_conn_env, kms_key, options, expected
):
    if options.get("encryption") == "aws:kms":
        options = {**options, "kms_key_id": kms_key}
    expected = tuple(kms_key if v == "KEY" else v for v in expected)
    operator = QodeInterviewsToS3Operator(
        task_id="land",
        interview_ids=lake_source,
        s3_bucket=s3_bucket,
        s3_prefix=PREFIX,
        **options,
    )
    result = operator.execute(context={})
    assert result["published"] > 0 and result["quarantined"] > 0

    keys = every_key(s3_client, s3_bucket)
    kinds = {k.split("/")[1] for k in keys}
    # _curated: the rows the landing staged for the curated tables (lake/curated/cache.py).
    assert kinds == {"interviews", "quarantine", "_index", "_manifests", "_quality", "_curated"}
    assert any("/assets/" in k for k in keys) and any(k.endswith("reasons.json") for k in keys)
    for key in keys:
        assert encryption_of(s3_client, s3_bucket, key) == expected, key


def test_journals_and_multipart_assets_are_encrypted(s3_client, s3_bucket, kms_key):
    raw = EXAMPLE.read_bytes()
    interview = parse_interview(raw)
    iid = interview.interview_id
    writer = LakeWriter(
        s3_client,
        s3_bucket,
        PREFIX,
        dag_id="d",
        run_id="r",
        chunk=0,
        run_date="2025-11-23",
        part_size=MIN_PART_SIZE,
        encryption="aws:kms",
        kms_key_id=kms_key,
    )
    assert writer.begin([(iid, interview)]) == 1
    journal = [k for k in every_key(s3_client, s3_bucket) if "/_journal/" in k]
    assert len(journal) == 1
    assert encryption_of(s3_client, s3_bucket, journal[0]) == ("aws:kms", kms_key)

    plan = writer.plan(iid, interview)
    big = writer.put_asset_stream(plan.base, "recording.bin", iter([b"x" * (MIN_PART_SIZE + 1)]))
    result = writer.publish(iid, raw, interview, [big])
    for key in (big.key, result.key, f"{PREFIX}/_index/{iid}.json"):
        assert encryption_of(s3_client, s3_bucket, key) == ("aws:kms", kms_key), key
    assert json.loads(s3_client.get_object(Bucket=s3_bucket, Key=result.key)["Body"].read())


def test_a_hook_s_own_extra_args_apply(s3_client, s3_bucket, aws_conn_env):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_env, extra_args={"ServerSideEncryption": "AES256"})
    store = ObjectStore(hook, s3_bucket)
    store.put("a.json", b"{}")
    assert encryption_of(s3_client, s3_bucket, "a.json") == ("AES256", None)


def test_bad_policies_are_refused_before_any_write():
    with pytest.raises(ValueError, match="encryption must be one of"):
        write_args(encryption="DES")
    with pytest.raises(ValueError, match="kms_key_id needs"):
        write_args(kms_key_id="k")
    with pytest.raises(ValueError, match="not accepted"):
        write_args({"ServerSideEncrpytion": "AES256"})
