"""The S3 lake: layout (:mod:`.layout`), object store (:mod:`.store`), index documents
(:mod:`.index`), journals (:mod:`.journal`), run records (:mod:`.records`) and the landing
protocol (:mod:`.writer`)."""

from __future__ import annotations

from airflow_provider_qode.lake.layout import (
    DEFAULT_ROLE_FIELDS,
    InvalidTimestampError,
    LakeLayout,
    encode_role,
    interview_date,
    role_of,
)
from airflow_provider_qode.lake.records import ManifestEntry, WrittenObject
from airflow_provider_qode.lake.store import ConditionFailed, LakeError, ObjectStore
from airflow_provider_qode.lake.writer import (
    LakeWriter,
    PublishPlan,
    PublishResult,
    QuarantineResult,
)

__all__ = [
    "DEFAULT_ROLE_FIELDS",
    "ConditionFailed",
    "InvalidTimestampError",
    "LakeError",
    "LakeLayout",
    "LakeWriter",
    "ManifestEntry",
    "ObjectStore",
    "PublishPlan",
    "PublishResult",
    "QuarantineResult",
    "WrittenObject",
    "encode_role",
    "interview_date",
    "role_of",
]
