"""Operator that turns a day's interview-event files into chunks of finished interview ids."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator, Context

from airflow_provider_qode.events import chunked, terminal_interview_ids
from airflow_provider_qode.exceptions import QodeConfigError
from airflow_provider_qode.lineage import EventsLineage, events_lineage
from airflow_provider_qode.models import parse_timestamp

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: In ``events_prefix``, replaced by each UTC date (``YYYY-MM-DD``) the window touches.
DATE_PLACEHOLDER = "{date}"


def dated_prefixes(events_prefix: str, start: datetime, end: datetime) -> list[str]:
    """The prefixes to list: ``events_prefix`` itself, or one per UTC date of ``[start, end)``
    when it holds ``{date}`` (so a daily run reads its day's files, not all history)."""
    if DATE_PLACEHOLDER not in events_prefix:
        return [events_prefix]
    first = start.astimezone(UTC).date()
    last = max(first, (end - timedelta(microseconds=1)).astimezone(UTC).date())
    return [
        events_prefix.replace(DATE_PLACEHOLDER, (first + timedelta(days=n)).isoformat())
        for n in range((last - first).days + 1)
    ]


class QodeTerminalInterviewIdsOperator(BaseOperator):
    """List the interviews whose latest event in the data interval is terminal.

    Reads every JSON Lines object under ``s3://{s3_bucket}/{events_prefix}`` and returns the ids
    split into chunks of ``chunk_size`` (ready for ``.expand``). A ``{date}`` in
    ``events_prefix`` is replaced by each UTC date of the window, and only those prefixes are
    listed. Ids given in ``dag_run.conf["interview_ids"]`` (manual runs, backfills) take
    precedence over events.

    :param window_start: ISO 8601 start of the window (templated; default: data interval start).
    :param window_end: ISO 8601 end of the window (templated; default: data interval end).
    """

    template_fields: Sequence[str] = (
        "s3_bucket",
        "events_prefix",
        "chunk_size",
        "window_start",
        "window_end",
        "aws_conn_id",
    )
    #: The events this execute read, for :meth:`get_openlineage_facets_on_complete`.
    _lineage: EventsLineage | None = None

    def __init__(
        self,
        *,
        s3_bucket: str,
        events_prefix: str,
        chunk_size: int | str = 500,
        window_start: str | None = None,
        window_end: str | None = None,
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.s3_bucket = s3_bucket
        self.events_prefix = events_prefix
        self.chunk_size = chunk_size
        self.window_start = window_start
        self.window_end = window_end
        self.aws_conn_id = aws_conn_id

    def _window(self, context: Context) -> tuple[datetime, datetime]:
        start = self.window_start or context.get("data_interval_start")
        end = self.window_end or context.get("data_interval_end")
        if start is None or end is None:
            raise QodeConfigError("no window: give window_start/window_end or a data interval")
        return tuple(  # type: ignore[return-value]
            parse_timestamp(v) if isinstance(v, str) else parse_timestamp(v.isoformat())
            for v in (start, end)
        )

    def _lines(self, hook: S3Hook, prefixes: Sequence[str]) -> Iterator[tuple[str, int, bytes]]:
        for prefix in prefixes:
            keys = hook.list_keys(bucket_name=self.s3_bucket, prefix=prefix)
            self.log.info(
                "Reading %d event file(s) under s3://%s/%s", len(keys), self.s3_bucket, prefix
            )
            for key in keys:
                body = hook.get_key(key, self.s3_bucket).get()["Body"]
                for number, line in enumerate(body.iter_lines(), start=1):
                    yield key, number, line

    def execute(self, context: Context) -> list[list[str]]:
        size = int(self.chunk_size)
        conf_ids = (
            (context["dag_run"].conf or {}).get("interview_ids") if context.get("dag_run") else None
        )
        if conf_ids:
            if not isinstance(conf_ids, list) or not all(isinstance(i, str) for i in conf_ids):
                raise QodeConfigError('dag_run.conf["interview_ids"] must be a list of strings')
            ids = list(dict.fromkeys(conf_ids))
            self.log.info("Taking %d interview ids from dag_run.conf", len(ids))
            return chunked(ids, size)
        start, end = self._window(context)
        prefixes = dated_prefixes(self.events_prefix, start, end)
        found = terminal_interview_ids(
            self._lines(S3Hook(aws_conn_id=self.aws_conn_id), prefixes), start, end
        )
        self._lineage = EventsLineage(
            self.s3_bucket, self.events_prefix, found.events_read + len(found.unreadable_lines)
        )
        for problem in found.unreadable_lines[:20]:
            self.log.warning("Unreadable event line %s", problem)
        if found.refused_ids:
            self.log.warning(
                "Refused %d unsafe interview ids: %r",
                len(found.refused_ids),
                found.refused_ids[:20],
            )
        self.log.info(
            "%d events read, %d unreadable lines; %d interviews finished in [%s, %s)",
            found.events_read,
            len(found.unreadable_lines),
            len(found.interview_ids),
            start,
            end,
        )
        return chunked(found.interview_ids + found.refused_ids, size)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """The events prefix read; no output dataset, the ids go by XCom (see ``lineage.py``)."""
        return events_lineage(self._lineage)
