"""The lineage module on its own: names, statistics and assertions from plain values."""

from __future__ import annotations

from collections import Counter

import pytest
from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

from airflow_provider_qode.ingest import ASSET_RULE, ChunkSummary
from airflow_provider_qode.lake.writer import ManifestEntry
from airflow_provider_qode.lineage import (
    RULE_COLUMNS,
    ChunkLineage,
    EventsLineage,
    Written,
    api_dataset_id,
    chunk_lineage,
    events_lineage,
    quality_assertions,
    s3_prefix_name,
)
from airflow_provider_qode.models import Interview
from airflow_provider_qode.quality.rules import RULES


@pytest.mark.parametrize(
    ("base_url", "namespace", "name"),
    [
        (
            "https://qode.example.com/api/v1",
            "https://qode.example.com:443",
            "/api/v1/integrations/candidates/interviews",
        ),
        (
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "/integrations/candidates/interviews",
        ),
        ("http://[::1]:9000/x/", "http://[::1]:9000", "/x/integrations/candidates/interviews"),
    ],
)
def test_api_dataset_is_host_port_and_interviews_path(base_url, namespace, name):
    assert api_dataset_id(base_url) == (namespace, name)


def test_s3_prefix_name_drops_slashes_and_names_the_bucket_root():
    assert s3_prefix_name("events/dt=2025-11-10/") == "events/dt=2025-11-10"
    assert s3_prefix_name("") == "/"


def test_written_counts_only_objects_written_under_the_prefix():
    def entry(key, size, kind="interview", action="written"):
        return ManifestEntry(key, size, "0" * 64, "published", kind, "i", action)

    entries = [
        entry("lake/interviews/dt=x/role=r/a/interview.json", 10),
        entry("lake/interviews/dt=x/role=r/a/assets/s.png", 100, kind="asset"),
        entry("lake/interviews/dt=x/role=r/b/interview.json", 7, action="unchanged"),
        entry("lake/_index/a.json", 5, kind="index"),
        entry("lake/quarantine/dt=x/c/interview.json", 3),
    ]
    assert Written.under(entries, "lake/interviews/") == Written(rows=1, size=110, files=2)
    assert Written.under(entries, "lake/quarantine/") == Written(rows=1, size=3, files=1)


def test_rule_columns_name_known_rules_and_payload_fields():
    assert set(RULE_COLUMNS) <= set(RULES)
    assert set(RULE_COLUMNS.values()) <= set(Interview.model_fields)


def test_one_assertion_per_rule_failing_where_an_interview_failed_it():
    by_rule = Counter({"QR-SCORE-01": 3, "QR-LIFE-07": 1, ASSET_RULE: 2, "QR-NEW-99": 1})
    assertions = quality_assertions(by_rule)
    by_id = {a.assertion: a for a in assertions}
    assert len(by_id) == len(assertions)
    assert set(by_id) == {*RULES, ASSET_RULE, "QR-NEW-99"}
    assert all(isinstance(a, dq.Assertion) for a in assertions)
    for rule_id, assertion in by_id.items():
        assert assertion.success is (by_rule[rule_id] == 0), rule_id
        assert assertion.actual == str(by_rule[rule_id])
    assert by_id["QR-SCORE-01"].column == "aggregated_score"
    assert by_id["QR-SCORE-01"].description == RULES["QR-SCORE-01"].description
    assert by_id["QR-LIFE-07"].severity == "warn"
    assert by_id["QR-SCORE-04"].column is None  # spans several fields: the whole interview


def _chunk(checked: int, by_rule: dict[str, int]) -> ChunkLineage:
    summary = ChunkSummary(published=checked, by_rule=Counter(by_rule))
    entries = [
        ManifestEntry("p/interviews/d/i/interview.json", 4, "0" * 64, "published", "interview")
    ]
    return ChunkLineage.from_chunk(
        summary, entries, api_base_url="https://q.example/api", bucket="b", prefix="/p/"
    )


def test_chunk_lineage_inputs_outputs_and_facets():
    lineage = chunk_lineage(_chunk(1, {"QR-LIFE-07": 1}))
    [api] = lineage.inputs
    assert (api.namespace, api.name) == (
        "https://q.example:443",
        "/api/integrations/candidates/interviews",
    )
    facet = api.inputFacets["dataQualityAssertions"]
    assert {a.assertion for a in facet.assertions if not a.success} == {"QR-LIFE-07"}
    published, quarantine = lineage.outputs
    assert (published.namespace, published.name, quarantine.name) == (
        "s3://b",
        "p/interviews",
        "p/quarantine",
    )
    stats = published.outputFacets["outputStatistics"]
    assert (stats.rowCount, stats.size, stats.fileCount) == (1, 4, 1)
    assert quarantine.outputFacets["outputStatistics"].rowCount == 0


def test_nothing_checked_means_no_assertions_and_no_run_means_no_lineage():
    [api] = chunk_lineage(_chunk(0, {})).inputs
    assert "dataQualityAssertions" not in (api.inputFacets or {})
    empty = chunk_lineage(None)
    assert (empty.inputs, empty.outputs) == ([], [])


def test_events_lineage_reads_the_prefix_and_writes_nothing():
    lineage = events_lineage(EventsLineage("b", "events/dt=2025-11-10/", 12))
    [events] = lineage.inputs
    assert (events.namespace, events.name) == ("s3://b", "events/dt=2025-11-10")
    assert events.inputFacets["inputStatistics"].rowCount == 12
    assert lineage.outputs == []
    assert events_lineage(None).inputs == []
