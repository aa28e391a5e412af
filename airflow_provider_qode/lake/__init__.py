"""The S3 lake: partition layout (:mod:`.layout`) and the writer (:mod:`.writer`)."""

from __future__ import annotations

from airflow_provider_qode.lake.layout import (
    DEFAULT_ROLE_FIELDS,
    InvalidTimestampError,
    LakeLayout,
    encode_role,
    interview_date,
    role_of,
)
from airflow_provider_qode.lake.writer import (
    LakeError,
    LakeWriter,
    ManifestEntry,
    PublishPlan,
    PublishResult,
    QuarantineResult,
    WrittenObject,
)

__all__ = [
    "DEFAULT_ROLE_FIELDS",
    "InvalidTimestampError",
    "LakeError",
    "LakeLayout",
    "LakeWriter",
    "ManifestEntry",
    "PublishPlan",
    "PublishResult",
    "QuarantineResult",
    "WrittenObject",
    "encode_role",
    "interview_date",
    "role_of",
]
