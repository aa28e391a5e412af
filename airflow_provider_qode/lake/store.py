"""The lake's S3 object store: every request the lake makes, with the bucket's policy applied.

One place decides what goes with each write: server-side encryption (``AES256``, or ``aws:kms``
with an optional key id), the Amazon connection hook's ``extra_args`` the way ``S3Hook`` applies
them to uploads (``ACL``, ``StorageClass``, ``SSECustomerKey`` ...) and requester-pays. Every
object the lake writes (JSON, assets and their multipart uploads, quarantine, index, journals,
manifests, reports) goes through :meth:`ObjectStore.put` or :meth:`ObjectStore.put_stream`, so
none can miss it. Conditional writes (``If-None-Match: *``, ``If-Match: <etag>``) refused by
the store raise :class:`ConditionFailed`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import S3Transfer
from botocore.exceptions import ClientError

from airflow_provider_qode.exceptions import QodeError

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from mypy_boto3_s3 import S3Client

__all__ = ["ENCRYPTIONS", "MAX_PARTS", "ConditionFailed", "LakeError", "ObjectStore"]

MAX_PARTS = 10_000
#: Server-side encryption the store can request on every write.
ENCRYPTIONS = frozenset({"AES256", "aws:kms"})
#: What S3 (and moto, MinIO) answer when a condition fails, or races another conditional write.
_CONDITION_FAILED = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
#: Upload arguments that the parts of a multipart upload must repeat (SSE-C and requester-pays).
_PART_ARGS = frozenset(
    {"SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5", "RequestPayer"}
)
#: Pooled S3 connections of a hook built by :func:`s3_hook` (at least): one per thread of a chunk.
MIN_POOL_CONNECTIONS = 64


def s3_hook(aws_conn_id: str | None, extra_args: Mapping[str, Any] | None = None) -> S3Hook:
    """An ``S3Hook`` on ``aws_conn_id`` (honours ``endpoint_url``) whose pool fits our threads.

    ``extra_args`` go to the hook as its upload arguments, as with any S3 operator. botocore
    keeps 10 pooled connections by default: fewer than the threads of a chunk or a rebuild, so
    connections would be discarded and reopened. Raise the pool, keep the rest of the
    connection's own botocore config (retries, timeouts, addressing) as it is.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    hook = S3Hook(aws_conn_id=aws_conn_id, extra_args=dict(extra_args or {}))
    config = hook.config
    pool = getattr(config, "max_pool_connections", None) or 10  # botocore sets it lazily
    if pool < MIN_POOL_CONNECTIONS:
        hook = S3Hook(
            aws_conn_id=aws_conn_id,
            extra_args=dict(extra_args or {}),
            config=config.merge(Config(max_pool_connections=MIN_POOL_CONNECTIONS)),
        )
    return hook


class LakeError(QodeError):
    """The lake is in a state the writer will not act on (e.g. an unreadable index document)."""


class ConditionFailed(LakeError):
    """A conditional write was refused: the key exists (create) or changed (``If-Match``)."""


def condition_failed(exc: ClientError) -> bool:
    """True when S3 refused a conditional write because of its condition (not for any error)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # Without a body (some stores), botocore has only the status to go on.
    return error.get("Code") in _CONDITION_FAILED or status in (409, 412)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


def write_args(
    extra_args: Mapping[str, Any] | None = None,
    *,
    encryption: str | None = None,
    kms_key_id: str | None = None,
    requester_pays: bool = False,
) -> dict[str, Any]:
    """The arguments sent with every write: ``extra_args`` (as S3Hook takes them) + encryption.

    Only boto3's upload arguments are accepted, so a typo fails here rather than on each write.
    """
    args = dict(extra_args or {})
    unknown = set(args) - set(S3Transfer.ALLOWED_UPLOAD_ARGS)
    if unknown:
        raise ValueError(f"extra_args not accepted for uploads: {sorted(unknown)}")
    if encryption is not None:
        if encryption not in ENCRYPTIONS:
            raise ValueError(f"encryption must be one of {sorted(ENCRYPTIONS)}, not {encryption!r}")
        args["ServerSideEncryption"] = encryption
    if kms_key_id:
        if args.get("ServerSideEncryption") != "aws:kms":
            raise ValueError("kms_key_id needs encryption='aws:kms'")
        args["SSEKMSKeyId"] = kms_key_id
    if requester_pays:
        args["RequestPayer"] = "requester"
    return args


class ObjectStore:
    """One bucket, through a thread-safe boto3 client, with one set of write arguments."""

    def __init__(
        self,
        s3: S3Hook | S3Client,
        bucket: str,
        *,
        extra_args: Mapping[str, Any] | None = None,
        encryption: str | None = None,
        kms_key_id: str | None = None,
    ) -> None:
        get_conn = getattr(s3, "get_conn", None)
        hook_args: Mapping[str, Any] = {}
        requester_pays = False
        if callable(get_conn):  # an S3Hook: its own extra_args and requester-pays apply too
            hook_args = getattr(s3, "extra_args", None) or {}
            requester_pays = bool(getattr(s3, "_requester_pays", False))
        self.client: S3Client = get_conn() if callable(get_conn) else s3  # type: ignore[assignment]
        self.bucket = bucket
        self.args = write_args(
            {**hook_args, **(extra_args or {})},
            encryption=encryption,
            kms_key_id=kms_key_id,
            requester_pays=requester_pays,
        )
        self._part_args = {k: v for k, v in self.args.items() if k in _PART_ARGS}

    # --- writes --------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str = "application/json",
        *,
        create: bool = False,
        if_match: str | None = None,
    ) -> str:
        """PUT ``body``; returns the new ETag. ``create``: only if absent; ``if_match``: only
        if the object still has that ETag. Either refused raises :class:`ConditionFailed`."""
        condition: dict[str, Any] = {}
        if create:
            condition["IfNoneMatch"] = "*"
        if if_match is not None:
            condition["IfMatch"] = if_match
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                **self.args,
                **condition,
            )
        except ClientError as exc:
            # If-Match on a key deleted meanwhile: NoSuchKey, but the condition failed all the same.
            if condition and (condition_failed(exc) or (if_match and _missing(exc))):
                raise ConditionFailed(f"s3://{self.bucket}/{key}: {exc}") from exc
            raise
        return str(response.get("ETag", ""))

    def put_stream(
        self,
        key: str,
        chunks: Iterable[bytes],
        content_type: str,
        part_size: int,
        on_part: Callable[[], None] | None = None,
    ) -> tuple[int, str]:
        """Stream ``chunks`` to ``key`` holding about one part in memory; ``(size, sha256)``.

        One PUT when everything fits in one part, else a multipart upload, aborted on any error
        (the generator's own included) so no invisible parts are left to pay for.
        """
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                # Strictly more than a part: the last part is never empty, and an object of
                # exactly one part size stays a single put.
                while len(buffer) > part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type, **self.args
                        )["UploadId"]
                    self._upload_part(key, upload_id, parts, bytes(buffer[:part_size]))
                    del buffer[:part_size]
                    if on_part is not None:
                        on_part()
            if upload_id is None:
                self.put(key, bytes(buffer), content_type)
            else:
                self._upload_part(key, upload_id, parts, bytes(buffer))
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    **self._part_args,
                )
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(Exception):  # the original error matters more
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            raise
        return size, digest.hexdigest()

    def _upload_part(
        self, key: str, upload_id: str, parts: list[dict[str, Any]], body: bytes
    ) -> None:
        number = len(parts) + 1
        if number > MAX_PARTS:
            raise LakeError(f"asset {key} needs more than {MAX_PARTS} parts; raise part_size")
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            **self._part_args,
        )
        parts.append({"ETag": response["ETag"], "PartNumber": number})

    # --- reads and deletes ---------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes, str] | None:
        """``(body, etag)``, or None if there is no such key (never an error for that)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, **self._read_args())
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return response["Body"].read(), str(response.get("ETag", ""))

    def _read_args(self) -> dict[str, Any]:
        # SSE-C objects can only be read with their key; S3Hook passes the same on downloads.
        return {k: v for k, v in self._part_args.items() if k != "SSECustomerKeyMD5"}

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete(self, key: str) -> None:
        """Delete one key; a missing key is no error."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: list[str]) -> None:
        """Delete ``keys`` in batches of 1,000, in the order given; a missing key is no error."""
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = response.get("Errors") or []
            if errors:
                raise LakeError(f"could not delete {len(errors)} objects, first: {errors[0]}")

    def probe_conditional_put(self, key: str) -> bool:
        """Whether the store refuses a second ``If-None-Match: *`` PUT of ``key`` (then deleted).

        A store that ignored it would let a new id's record overwrite a live index, so anything
        but a refusal counts as unsupported.
        """
        self.put(key, b"", "application/octet-stream")
        try:
            self.put(key, b"", "application/octet-stream", create=True)
        except ConditionFailed:
            return True
        finally:
            with contextlib.suppress(Exception):  # a leftover probe is harmless
                self.delete(key)
        return False
