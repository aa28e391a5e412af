"""The curated layer: typed Parquet tables derived from the raw partitions (issue #10).

:mod:`.schemas` (the tables, declared once), :mod:`.rows` (typed interview -> rows, pure),
:mod:`.parquet` (deterministic bytes), :mod:`.source` (a raw partition as the index publishes
it) and :mod:`.curator` (the rebuild: compare-and-swap writes and a check after each write).
"""

from __future__ import annotations

from airflow_provider_qode.lake.curated.curator import (
    CurateSummary,
    Curator,
    PartitionResult,
    build_files,
)
from airflow_provider_qode.lake.curated.rows import CurateError, RawInterview, interview_rows
from airflow_provider_qode.lake.curated.schemas import CRITERIA, INTERVIEWS, SCHEMAS, SKILLS, TABLES

__all__ = [
    "CRITERIA",
    "INTERVIEWS",
    "SCHEMAS",
    "SKILLS",
    "TABLES",
    "CurateError",
    "CurateSummary",
    "Curator",
    "PartitionResult",
    "RawInterview",
    "build_files",
    "interview_rows",
]
