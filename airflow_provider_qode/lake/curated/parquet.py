"""A table's Parquet bytes, written with fixed options so that the same rows give the same bytes.

Nothing in the file depends on when or where it was written: no timestamps, no writer-chosen
row-group split (one fixed size), single-threaded, the same compression and page settings on
every run. ``created_by`` names the pyarrow version, so an upgrade of pyarrow may rewrite each
partition once; within one version a rebuild of unchanged raw data is byte-identical.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["ROW_GROUP_SIZE", "parquet_bytes", "read_parquet_bytes"]

#: Rows per row group: fixed, so the split never depends on the machine.
ROW_GROUP_SIZE = 128 * 1024


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as deterministic Parquet (zstd, dictionary pages, statistics, format 2.6)."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        row_group_size=ROW_GROUP_SIZE,
        version="2.6",
        data_page_version="1.0",
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        store_schema=True,
        coerce_timestamps="us",
        allow_truncated_timestamps=False,
    )
    return bytes(sink.getvalue().to_pybytes())


def read_parquet_bytes(body: bytes) -> pa.Table:
    """The table stored in ``body`` (tests and the CLI read files back with this)."""
    return pq.read_table(pa.BufferReader(body))
