"""The Athena/Glue DDL in docs/lake.md declares exactly the curated tables' pyarrow schemas."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_qode.lake.curated import SCHEMAS

LAKE_DOC = Path(__file__).resolve().parents[2] / "docs" / "lake.md"
DDL = re.compile(
    r"CREATE EXTERNAL TABLE qode_(?P<table>\w+) \((?P<columns>.*?)\n\)\n"
    r"PARTITIONED BY \(`dt` string\)\nSTORED AS PARQUET\n"
    r"LOCATION 's3://<bucket>/<prefix>/curated/(?P<location>\w+)/'\n"
    r"TBLPROPERTIES \((?P<properties>.*?)\n\);",
    re.S,
)
COLUMN = re.compile(r"^\s*`(?P<name>\w+)` (?P<type>[\w<>]+),?$")


def athena_type(arrow: pa.DataType) -> str:
    """The Hive/Athena type that reads a Parquet column written with ``arrow``."""
    if pa.types.is_list(arrow):
        return f"array<{athena_type(arrow.value_type)}>"
    for check, name in (
        (pa.types.is_string, "string"),
        (pa.types.is_float64, "double"),
        (pa.types.is_int32, "int"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_timestamp, "timestamp"),
    ):
        if check(arrow):
            return name
    raise AssertionError(f"no Athena type for {arrow}: add it here and to the DDL")


def _tables() -> dict[str, re.Match[str]]:
    return {m["table"]: m for m in DDL.finditer(LAKE_DOC.read_text(encoding="utf-8"))}


def test_the_docs_declare_every_curated_table_once():
    assert sorted(_tables()) == sorted(SCHEMAS)


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_ddl_columns_match_the_pyarrow_schema(table: str):
    ddl = _tables()[table]
    columns = [COLUMN.fullmatch(line) for line in ddl["columns"].strip().splitlines()]
    assert all(columns), ddl["columns"]
    declared = [(c["name"], c["type"]) for c in columns if c]
    schema = SCHEMAS[table]
    # dt is the partition key: in the path, never a column of the files.
    assert "dt" not in schema.names
    assert declared == [(f.name, athena_type(f.type)) for f in schema]
    assert ddl["location"] == table


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_partition_projection_covers_the_dt_layout(table: str):
    properties = dict(re.findall(r"'([\w.]+)' = '([^']*)'", _tables()[table]["properties"]))
    assert properties["projection.enabled"] == "true"
    assert properties["projection.dt.type"] == "date"
    assert properties["projection.dt.format"] == "yyyy-MM-dd"
    assert properties["storage.location.template"] == (
        f"s3://<bucket>/<prefix>/curated/{table}/dt=${{dt}}/"
    )
