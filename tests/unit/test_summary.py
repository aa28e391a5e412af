"""The per-run summary the DAG logs and returns: totals across chunk summaries."""

from __future__ import annotations

from airflow_provider_qode.operators.interviews import lake_asset, summary_table, total_summary

CHUNKS = [
    {
        "requested": 3,
        "published": 2,
        "quarantined": 1,
        "missing": 0,
        "failed": 0,
        "unchanged": 1,
        "partitions": {"dt=2025-11-20/role=backend-developer": 2},
        "by_rule": {"QR-SCORE-01": 1},
        "manifest_uri": "s3://b/p/_manifests/d/r/chunk-0.json",
    },
    {
        "requested": 2,
        "published": 1,
        "quarantined": 0,
        "missing": 1,
        "failed": 0,
        "unchanged": 0,
        "partitions": {
            "dt=2025-11-20/role=backend-developer": 1,
            "dt=2025-11-21/role=c-developer_a96ea2792985": 0,
        },
        "by_rule": {},
        "manifest_uri": "s3://b/p/_manifests/d/r/chunk-1.json",
    },
]


def test_totals_add_up_every_chunk():
    totals = total_summary(CHUNKS)
    assert (totals["requested"], totals["published"], totals["quarantined"]) == (5, 3, 1)
    assert totals["missing"] == 1 and totals["chunks"] == 2
    assert totals["partitions"]["dt=2025-11-20/role=backend-developer"] == 3
    assert totals["by_rule"] == {"QR-SCORE-01": 1}
    assert len(totals["manifest_uris"]) == 2


def test_table_lists_partitions_sorted_with_counts():
    table = summary_table(CHUNKS).splitlines()
    assert table[0].startswith("partition")
    assert table[2].split() == ["dt=2025-11-20/role=backend-developer", "3"]
    assert "published=3 quarantined=1 missing=1" in table[-2]
    assert table[-1] == "rules: QR-SCORE-01=1"


def test_empty_day_has_a_table_too():
    assert "published=0" in summary_table([])
    assert total_summary([])["chunks"] == 0


def test_lake_asset_uri_names_the_published_prefix():
    assert lake_asset("bucket", "qode").uri == "s3://bucket/qode/interviews"
    assert lake_asset("bucket", "").uri == "s3://bucket/interviews"
