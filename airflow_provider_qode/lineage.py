"""OpenLineage for the Qode operators: the API in, the lake's prefixes out, the gate as assertions.

``apache-airflow-providers-openlineage`` is an optional extra, so nothing here imports it (or
the OpenLineage client) at module level: the operators record plain values while they run
(:class:`ChunkLineage`, :class:`EventsLineage`) and build OpenLineage objects only inside
``get_openlineage_facets_on_complete``, which only the OpenLineage listener calls.

Dataset names follow the OpenLineage naming conventions:

* the Qode API: namespace ``<scheme>://<host>:<port>``, name the path of the interviews
  resource (the base URL's path included), e.g. ``/api/v1/integrations/candidates/interviews``;
* the lake: namespace ``s3://<bucket>``, names ``<prefix>/interviews`` (the same location as
  the operator's Airflow Asset) and ``<prefix>/quarantine``; the events: the events prefix.

The gate's verdicts become one ``dataQualityAssertions`` entry per rule on the API input, the
dataset the rules checked (the facet is an input facet in the spec, as dbt's tests use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from airflow_provider_qode.hooks.qode import INTERVIEWS_PATH
from airflow_provider_qode.ingest import ASSET_RULE, ChunkSummary
from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.quality.rules import RULES

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.facet_v2.data_quality_assertions_dataset import Assertion

    from airflow_provider_qode.lake.writer import ManifestEntry

__all__ = [
    "RULE_COLUMNS",
    "ChunkLineage",
    "EventsLineage",
    "Written",
    "api_dataset_id",
    "chunk_lineage",
    "events_lineage",
    "planned_lineage",
    "quality_assertions",
    "s3_prefix_name",
]

#: Rules about one top-level payload field name it as the assertion's ``column``; the others
#: span several fields or nested lists and refer to the whole interview.
RULE_COLUMNS: dict[str, str] = {
    "QR-SCORE-01": "aggregated_score",
    "QR-ENUM-01": "interview_type",
    "QR-ENUM-02": "status",
    "QR-ENUM-03": "assessment_version",
    "QR-ENUM-04": "result",
    "QR-COV-03": "uncovered_domains",
    "QR-LIFE-02": "interview_id",
    "QR-LIFE-03": "timestamp",
    "QR-LIFE-07": "interview_id",
}
#: Checks the landing itself adds to the rules table (``ingest.py``): id -> description.
LANDING_CHECKS: dict[str, str] = {
    ASSET_RULE: "every asset the payload names could be downloaded",
}
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Written:
    """What one chunk wrote under one lake prefix: interviews, bytes and objects written."""

    rows: int = 0
    size: int = 0
    files: int = 0

    @classmethod
    def under(cls, entries: Iterable[ManifestEntry], key_prefix: str) -> Written:
        """Sum the manifest entries written (not found unchanged) under ``key_prefix``."""
        written = [e for e in entries if e.action == "written" and e.key.startswith(key_prefix)]
        return cls(
            rows=sum(e.kind == "interview" for e in written),
            size=sum(e.size for e in written),
            files=len(written),
        )


@dataclass(frozen=True)
class ChunkLineage:
    """What a landing chunk read and wrote, as plain values kept on the operator."""

    api_base_url: str
    bucket: str
    prefix: str
    published: Written
    quarantined: Written
    #: Interviews given a verdict (published or quarantined): the rules' denominator.
    checked: int
    #: Rule id -> interviews it fired for (``ChunkSummary.by_rule``: the rules that quarantined
    #: an interview, the warnings of a published one).
    by_rule: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_chunk(
        cls,
        summary: ChunkSummary,
        entries: Iterable[ManifestEntry],
        *,
        api_base_url: str,
        bucket: str,
        prefix: str,
    ) -> ChunkLineage:
        layout = LakeLayout(prefix)
        entries = list(entries)
        return cls(
            api_base_url=api_base_url,
            bucket=bucket,
            prefix=layout.prefix,
            published=Written.under(entries, f"{layout.prefix}interviews/"),
            quarantined=Written.under(entries, f"{layout.prefix}quarantine/"),
            checked=summary.published + summary.quarantined,
            by_rule=dict(summary.by_rule),
        )


@dataclass(frozen=True)
class EventsLineage:
    """What the event-ids operator read: the events prefix and the lines under it."""

    bucket: str
    events_prefix: str
    lines: int


def api_dataset_id(base_url: str) -> tuple[str, str]:
    """(namespace, name) of the Qode interviews resource behind a connection's base URL."""
    parts = urlsplit(base_url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    namespace = f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"
    return namespace, parts.path.rstrip("/") + INTERVIEWS_PATH


def s3_prefix_name(prefix: str) -> str:
    """An S3 prefix as an OpenLineage dataset name: no trailing slash; ``/`` for the bucket."""
    return prefix.strip("/") or "/"


def quality_assertions(by_rule: Mapping[str, int]) -> list[Assertion]:
    """One OpenLineage ``Assertion`` per rule: success when no interview failed (or was warned).

    Every rule of the table is listed, passing ones too, so a consumer sees what was checked;
    ``actual`` is the number of interviews the rule fired for, ``expected`` is ``0``.
    """
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    described = {rule_id: (r.description, r.severity.value) for rule_id, r in RULES.items()}
    for rule_id, description in LANDING_CHECKS.items():
        described.setdefault(rule_id, (description, "error"))
    for rule_id in by_rule:  # a rule the table does not know still gets reported
        described.setdefault(rule_id, ("", "error"))
    return [
        dq.Assertion(
            assertion=rule_id,
            success=by_rule.get(rule_id, 0) == 0,
            column=RULE_COLUMNS.get(rule_id),
            severity=severity,
            name=rule_id,
            description=description or None,
            expected="0",
            actual=str(by_rule.get(rule_id, 0)),
        )
        for rule_id, (description, severity) in described.items()
    ]


def planned_lineage(api_base_url: str, bucket: str, prefix: str) -> OperatorLineage:
    """The landing task's datasets before it runs (the START event): API in, lake prefixes out.

    Built from the rendered ``s3_bucket``/``s3_prefix``, so it names the lake this run writes,
    not a parse-time default.
    """
    return _landing_lineage(api_base_url, bucket, LakeLayout(prefix).prefix)


def chunk_lineage(chunk: ChunkLineage | None) -> OperatorLineage:
    """The landing task's lineage; empty when execute stopped before landing anything."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    if chunk is None:
        return OperatorLineage()
    return _landing_lineage(chunk.api_base_url, chunk.bucket, chunk.prefix, chunk)


def _landing_lineage(
    api_base_url: str, bucket: str, prefix: str, chunk: ChunkLineage | None = None
) -> OperatorLineage:
    """API in and the two lake prefixes out; with ``chunk``, the facets of what it did."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    namespace, name = api_dataset_id(api_base_url)
    api = InputDataset(namespace=namespace, name=name)
    if chunk is not None and chunk.checked:
        assertions = dq.DataQualityAssertionsDatasetFacet(
            assertions=quality_assertions(chunk.by_rule)
        )
        api.inputFacets = {"dataQualityAssertions": assertions}
    outputs = []
    for area in ("interviews", "quarantine"):
        output = OutputDataset(namespace=f"s3://{bucket}", name=f"{prefix}{area}")
        if chunk is not None:
            written = chunk.published if area == "interviews" else chunk.quarantined
            output.outputFacets = {
                "outputStatistics": OutputStatisticsOutputDatasetFacet(
                    rowCount=written.rows, size=written.size, fileCount=written.files
                )
            }
        outputs.append(output)
    return OperatorLineage(inputs=[api], outputs=outputs)


def events_lineage(read: EventsLineage | None) -> OperatorLineage:
    """The event-ids task's lineage: the events prefix it read; no output dataset.

    Its output is an XCom of id chunks, Airflow's own plumbing that no outside consumer reads;
    what those ids became is the landing task's lineage. Ids taken from ``dag_run.conf``
    read nothing, so that run has no input either.
    """
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.facet_v2 import input_statistics_input_dataset as stats

    if read is None:
        return OperatorLineage()
    events = InputDataset(
        namespace=f"s3://{read.bucket}",
        name=s3_prefix_name(read.events_prefix),
        inputFacets={
            "inputStatistics": stats.InputStatisticsInputDatasetFacet(rowCount=read.lines)
        },
    )
    return OperatorLineage(inputs=[events])
