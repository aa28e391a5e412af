"""Operator that rebuilds the curated Parquet tables of the date partitions a run changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_qode.exceptions import QodeConfigError
from airflow_provider_qode.lake.layout import LakeLayout, check_dt
from airflow_provider_qode.lineage import s3_prefix_name

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


def touched_dts(summaries: Sequence[dict[str, Any] | None] | None) -> list[str]:
    """The ``dt`` partitions named by chunk summaries' ``touched_dts``, sorted, each once.

    Reads by index: a mapped task's lazy XCom sequence, iterated, probes one offset past its end
    (which Airflow logs as an error). Chunks that pushed nothing (``None``) are passed over.
    """
    if not summaries:
        return []
    found: set[str] = set()
    for i in range(len(summaries)):
        summary = summaries[i]
        if summary:
            found.update(summary.get("touched_dts") or ())
    return sorted(found)


def _checked_dts(dts: Iterable[object]) -> set[str]:
    """``YYYY-MM-DD`` dates only: a dt becomes part of an S3 key, so anything else is refused."""
    checked = set()
    for dt in dts:
        try:
            checked.add(check_dt(dt))  # type: ignore[arg-type]
        except ValueError as exc:
            raise QodeConfigError(f"dts: {exc}") from None
    return checked


class QodeCurateOperator(BaseOperator):
    """Rebuild the curated tables (``curated/<table>/dt=<date>/``) of the partitions given.

    The partitions are the union of ``dts`` and the ``touched_dts`` of ``summaries`` (the
    landing chunks' XComs): only partitions whose published interviews changed are rebuilt,
    each from its raw partition in full, so the result never depends on what ran before. With
    nothing to rebuild the task is skipped. The XCom is the curator's small summary.

    :param s3_bucket: lake bucket (templated).
    :param s3_prefix: lake prefix inside the bucket (templated).
    :param summaries: landing chunk summaries (templated; e.g. ``land_chunk.output``).
    :param dts: extra ``YYYY-MM-DD`` partitions to rebuild (templated; backfills).
    :param aws_conn_id: the Amazon connection for S3.
    """

    template_fields: Sequence[str] = ("s3_bucket", "s3_prefix", "summaries", "dts", "aws_conn_id")
    ui_color = "#d6eaf8"
    #: Rows per table after the last execute, for :meth:`get_openlineage_facets_on_complete`.
    _rows: dict[str, int] | None = None

    def __init__(
        self,
        *,
        s3_bucket: str,
        s3_prefix: str = "",
        summaries: Sequence[dict[str, Any] | None] | None = None,
        dts: Sequence[str] | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket = s3_bucket
        self.s3_prefix = s3_prefix
        self.summaries = summaries
        self.dts = dts
        self.aws_conn_id = aws_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.s3_bucket:
            raise QodeConfigError("s3_bucket is required")
        dts = list(self.dts or []) if not isinstance(self.dts, str) else [self.dts]
        wanted = sorted(_checked_dts([*touched_dts(self.summaries), *dts]))
        if not wanted:
            raise AirflowSkipException("no published interview changed: nothing to curate")
        # pyarrow is imported when a rebuild runs, not with the DAG file.
        from airflow_provider_qode.lake.curated import Curator

        curator = Curator.from_conn_id(self.aws_conn_id, self.s3_bucket, self.s3_prefix)
        self.log.info(
            "Rebuilding the curated tables of %d partition(s) in s3://%s/%s: %s",
            len(wanted),
            self.s3_bucket,
            self.s3_prefix,
            ", ".join(wanted),
        )
        result: dict[str, Any] = curator.rebuild_many(wanted).to_xcom()
        self._rows = dict(result["rows"])
        self.log.info("Curated: %s", result)
        return result

    def _lineage(self, rows: dict[str, int] | None) -> OperatorLineage:
        """The raw ``interviews/`` prefix in, one dataset per curated table out."""
        from airflow.providers.common.compat.openlineage.facet import (
            InputDataset,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_provider_qode.lake.curated.schemas import TABLES

        layout = LakeLayout(self.s3_prefix)
        namespace = f"s3://{self.s3_bucket}"
        outputs = []
        for table in TABLES:
            facets: dict[str, Any] = {}
            if rows is not None:
                facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
                    rowCount=rows.get(table, 0)
                )
            name = s3_prefix_name(layout.curated_prefix(table))
            outputs.append(OutputDataset(namespace=namespace, name=name, outputFacets=facets))
        source = InputDataset(namespace=namespace, name=s3_prefix_name(layout.interviews_prefix))
        return OperatorLineage(inputs=[source], outputs=outputs)

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """The datasets this run reads and writes, from the rendered bucket and prefix."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """As on start, with the rows each table holds in the partitions rebuilt; nothing when
        the task was skipped or stopped before a rebuild."""
        if self._rows is None:
            from airflow.providers.openlineage.extractors import OperatorLineage

            return OperatorLineage()
        return self._lineage(self._rows)
