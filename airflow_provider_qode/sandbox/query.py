"""DuckDB over a local S3 server, for the demo and the tests that read the curated tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def duckdb_over_s3(endpoint: str, key_id: str, secret: str) -> Any:  # duckdb connection
    """A DuckDB connection reading ``s3://`` from ``endpoint`` (moto), with the httpfs extension
    loaded from its PyPI wheel: never ``INSTALL httpfs``, which would need the internet.

    duckdb is a development dependency, so it is imported here, not with the package.
    """
    import duckdb
    import duckdb_extension_httpfs

    extension = (
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "httpfs.duckdb_extension"
    )
    con = duckdb.connect()
    con.execute(f"LOAD '{extension}'")
    con.execute(
        f"CREATE SECRET local_s3 (TYPE s3, KEY_ID '{key_id}', SECRET '{secret}', "
        f"REGION 'us-east-1', ENDPOINT '{urlsplit(endpoint).netloc}', URL_STYLE 'path', "
        "USE_SSL false)"
    )
    return con
