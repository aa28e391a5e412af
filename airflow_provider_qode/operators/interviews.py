"""Operator that lands a chunk of Qode interviews in the S3 lake, checked by the quality gate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_qode.exceptions import QodeConfigError, QodeError
from airflow_provider_qode.hooks.qode import QodeHook
from airflow_provider_qode.ingest import DEFAULT_S3_CONCURRENCY, DEFAULT_SUB_BATCH, ingest_chunk
from airflow_provider_qode.lake.layout import DEFAULT_ROLE_FIELDS, normalize_prefix
from airflow_provider_qode.lake.writer import LakeWriter
from airflow_provider_qode.lineage import ChunkLineage, chunk_lineage, planned_lineage

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


class QodeIncompleteChunkError(QodeError):
    """Some ids could not be fetched after every retry; everything else was landed."""


#: Counts from a run's totals that an Asset event's ``extra`` carries.
EVENT_COUNTS = ("requested", "published", "quarantined", "missing", "failed", "unchanged", "moved")


def lake_asset(bucket: str, prefix: str) -> Asset:
    """The Airflow Asset for a lake's published interviews, to schedule downstream DAGs on."""
    uri = f"s3://{bucket}/{normalize_prefix(prefix)}interviews"
    return Asset(uri=uri, name=f"qode_interviews_{bucket}_{normalize_prefix(prefix)}".rstrip("/"))


def lake_alias() -> AssetAlias:
    """The outlet of a landing task: resolved at run time to the lake the run actually wrote.

    The bucket and prefix are templated per run, so a parse-time Asset would name the wrong lake
    for a run with another ``s3_bucket``; the alias gets its Asset from :func:`emit_lake_event`.
    """
    return AssetAlias(name="qode_lake", group="qode")


def emit_lake_event(
    context: Context, outlets: Sequence[object], bucket: str, prefix: str, totals: dict[str, Any]
) -> Asset | None:
    """Add one event for ``lake_asset(bucket, prefix)`` to each AssetAlias in ``outlets``.

    Only when the run published something new or changed (``published`` beyond ``unchanged``):
    a run that landed nothing, or a rerun that found every interview in place, leaves the lake
    as it was, so downstream DAGs are not woken. ``extra`` carries the counts and manifest URIs.
    Returns the Asset an event was added for, else None.
    """
    if int(totals.get("published", 0)) <= int(totals.get("unchanged", 0)):
        return None
    aliases = [o for o in outlets if isinstance(o, AssetAlias)]
    if not aliases:
        return None
    asset = lake_asset(bucket, prefix)
    extra: dict[str, Any] = {key: int(totals.get(key, 0)) for key in EVENT_COUNTS}
    extra["manifest_uris"] = [uri for uri in totals.get("manifest_uris", []) if uri]
    for alias in aliases:
        context["outlet_events"][alias].add(asset, extra=extra)
    return asset


class QodeInterviewsToS3Operator(BaseOperator):
    """Fetch interviews from Qode, check them with the quality gate, land them in S3.

    Published interviews go to ``interviews/dt=<date>/role=<role>/<id>/`` (raw JSON + assets),
    the rest to ``quarantine/`` with their raw bytes and reasons. Returns a small summary (counts,
    partitions, manifest URI) as the XCom, never payloads.

    The task fails only when it could not get past an infrastructure problem (the API unreachable
    for some ids after every retry; S3 errors), and only after landing everything it could, so a
    retry completes the chunk. Quarantine alone fails it only with ``fail_on_quarantine=True``.
    With ``outlets=[lake_alias()]`` it emits an Asset event for the lake it wrote (see
    :func:`emit_lake_event`); the example DAG leaves that to its one summary task instead.

    :param interview_ids: ids to land (templated; one mapped task per chunk in the example DAG).
    :param s3_bucket: lake bucket (templated).
    :param s3_prefix: lake prefix inside the bucket (templated).
    :param max_concurrency: API requests in flight; default from the connection's extra.
    :param s3_concurrency: interviews landed in parallel (asset download + S3 writes); the S3
        client's connection pool is raised to match.
    :param sub_batch: interviews fetched, checked and landed together inside the chunk; the
        task's peak memory follows it rather than the chunk size (one manifest and one quality
        report per chunk all the same).
    :param role_fields: payload keys tried in order for the role partition.
    :param encryption: server-side encryption of every object written, ``AES256`` or ``aws:kms``.
    :param kms_key_id: the KMS key for ``aws:kms`` (default: the bucket's or AWS-managed key).
    :param s3_extra_args: upload arguments for every object, as ``S3Hook(extra_args=...)``.
    """

    template_fields: Sequence[str] = (
        "interview_ids",
        "s3_bucket",
        "s3_prefix",
        "qode_conn_id",
        "aws_conn_id",
    )
    ui_color = "#d5f5e3"
    #: What the last execute read and wrote, for :meth:`get_openlineage_facets_on_complete`.
    _lineage: ChunkLineage | None = None

    def __init__(
        self,
        *,
        interview_ids: list[str] | str,
        s3_bucket: str,
        s3_prefix: str = "",
        qode_conn_id: str = QodeHook.default_conn_name,
        aws_conn_id: str | None = "aws_default",
        max_concurrency: int | None = None,
        s3_concurrency: int = DEFAULT_S3_CONCURRENCY,
        sub_batch: int = DEFAULT_SUB_BATCH,
        fail_on_quarantine: bool = False,
        role_fields: Sequence[str] = DEFAULT_ROLE_FIELDS,
        encryption: str | None = None,
        kms_key_id: str | None = None,
        s3_extra_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.interview_ids = interview_ids
        self.s3_bucket = s3_bucket
        self.s3_prefix = s3_prefix
        self.qode_conn_id = qode_conn_id
        self.aws_conn_id = aws_conn_id
        self.max_concurrency = max_concurrency
        self.s3_concurrency = s3_concurrency
        self.sub_batch = sub_batch
        self.fail_on_quarantine = fail_on_quarantine
        self.role_fields = tuple(role_fields)
        self.encryption = encryption
        self.kms_key_id = kms_key_id
        self.s3_extra_args = s3_extra_args

    def _ids(self) -> list[str]:
        ids = self.interview_ids
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list | tuple) or not all(isinstance(i, str) for i in ids):
            raise QodeConfigError(f"interview_ids must be a list of strings, got {ids!r:.200}")
        return list(ids)

    def execute(self, context: Context) -> dict[str, Any]:
        ids = self._ids()
        if not self.s3_bucket:
            raise QodeConfigError("s3_bucket is required")
        if self.s3_concurrency < 1:
            raise QodeConfigError("s3_concurrency must be at least 1")
        if self.sub_batch < 1:
            raise QodeConfigError("sub_batch must be at least 1")
        ti = context.get("ti")
        dag_run = context.get("dag_run")
        logical = context.get("logical_date") or context.get("data_interval_start")
        run_date = (logical or datetime.now(UTC)).date()
        chunk = getattr(ti, "map_index", -1)
        hook = QodeHook(self.qode_conn_id, max_concurrency=self.max_concurrency)
        writer = LakeWriter.from_conn_id(
            self.aws_conn_id,
            self.s3_bucket,
            self.s3_prefix,
            dag_id=getattr(dag_run, "dag_id", None) or self.dag_id,
            run_id=getattr(dag_run, "run_id", None) or "manual",
            chunk=f"chunk-{chunk if chunk is not None and chunk >= 0 else 0}",
            run_date=run_date,
            role_fields=self.role_fields,
            encryption=self.encryption,
            kms_key_id=self.kms_key_id,
            extra_args=self.s3_extra_args,
        )
        self.log.info(
            "Landing %d interviews in s3://%s/%s", len(ids), self.s3_bucket, self.s3_prefix
        )
        with hook:
            summary = ingest_chunk(
                hook, writer, ids, s3_concurrency=self.s3_concurrency, sub_batch=self.sub_batch
            )
        self._lineage = ChunkLineage.from_chunk(
            summary,
            writer.entries,
            api_base_url=hook.config.base_url,
            bucket=self.s3_bucket,
            prefix=self.s3_prefix,
        )
        result = summary.to_xcom(self.s3_bucket)
        self.log.info("Chunk summary:\n%s", summary_table([result]))
        if summary.failed:
            sample = "; ".join(f"{k}: {v}" for k, v in list(summary.failed.items())[:5])
            raise QodeIncompleteChunkError(
                f"{len(summary.failed)} of {len(ids)} interviews could not be fetched after every "
                f"retry (all others were landed; a retry completes the chunk): {sample}"
            )
        if self.fail_on_quarantine and summary.quarantined:
            raise AirflowFailException(
                f"{summary.quarantined} interviews quarantined (fail_on_quarantine=True); "
                f"see {result['manifest_uri']}"
            )
        emit_lake_event(
            context, self.outlets, self.s3_bucket, self.s3_prefix, total_summary([result])
        )
        return result

    def get_openlineage_facets_on_start(self) -> OperatorLineage:
        """The datasets this run will read and write, named from the rendered bucket and prefix."""
        return planned_lineage(
            QodeHook(self.qode_conn_id).config.base_url, self.s3_bucket, self.s3_prefix
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """The Qode API in (with the gate's assertions), the lake's two prefixes out.

        Called by the OpenLineage listener on success and on failure (a chunk that failed after
        landing what it could still reports what it wrote); see ``lineage.py``.
        """
        return chunk_lineage(self._lineage)


def total_summary(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up chunk summaries: the day's totals for XCom."""
    totals: dict[str, Any] = {
        "chunks": len(summaries),
        "partitions": {},
        "by_rule": {},
        "manifest_uris": [],
    }
    for s in summaries:
        for key in (
            "requested",
            "published",
            "quarantined",
            "missing",
            "failed",
            "unchanged",
            "moved",
        ):
            totals[key] = totals.get(key, 0) + int(s.get(key, 0))
        for group in ("partitions", "by_rule"):
            for name, count in s.get(group, {}).items():
                totals[group][name] = totals[group].get(name, 0) + count
        totals["manifest_uris"].append(s.get("manifest_uri"))
    return totals


def summary_table(summaries: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of landed interviews per partition, then the outcome counts."""
    totals = total_summary(summaries)
    rows = sorted(totals["partitions"].items())
    width = max([len("partition"), *(len(p) for p, _ in rows)])
    lines = [f"{'partition':<{width}}  interviews", f"{'-' * width}  ----------"]
    lines += [f"{p:<{width}}  {n:>10}" for p, n in rows]
    lines.append(
        "published={published} quarantined={quarantined} missing={missing} failed={failed} "
        "unchanged={unchanged} (of {requested} requested)".format(
            **{
                k: totals.get(k, 0)
                for k in ("published", "quarantined", "missing", "failed", "unchanged", "requested")
            }
        )
    )
    if totals["by_rule"]:
        lines.append(
            "rules: " + ", ".join(f"{r}={n}" for r, n in sorted(totals["by_rule"].items()))
        )
    return "\n".join(lines)
