"""What ``docs/lake.md`` shows about the curated tables, made from the schemas themselves: the
column tables and Athena's ``CREATE EXTERNAL TABLE`` with partition projection on ``dt``
(``tests/unit/test_curated_docs.py`` checks the docs hold exactly this)."""

from __future__ import annotations

import pyarrow as pa

from airflow_provider_qode.lake.curated.schemas import DESCRIPTIONS, DT, SCHEMAS

__all__ = ["athena_ddl", "athena_type", "column_table"]


def athena_type(data_type: pa.DataType) -> str:
    """The Athena (Hive DDL) type of a curated column."""
    if pa.types.is_list(data_type):
        return f"array<{athena_type(data_type.value_type)}>"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    names = {pa.string(): "string", pa.float64(): "double", pa.int32(): "int", pa.int64(): "bigint"}
    return names[data_type]


def column_table(table: str) -> str:
    """A Markdown table of ``table``'s columns: name, Parquet/Arrow type, what it holds."""
    lines = ["| column | type | holds |", "|---|---|---|"]
    for field in [*SCHEMAS[table], DT]:
        kind = str(field.type) + ("" if field.nullable else ", not null")
        if field.name == DT.name:
            kind = "string (partition)"
        lines.append(f"| `{field.name}` | {kind} | {DESCRIPTIONS[table][field.name]} |")
    return "\n".join(lines)


def athena_ddl(table: str, location: str, name: str | None = None) -> str:
    """``CREATE EXTERNAL TABLE`` for ``table`` at ``location`` (``s3://.../curated/<table>/``),
    with ``dt`` projected from 2000-01-01 to today, so no partition ever needs adding."""
    location = location.rstrip("/") + "/"
    columns = ",\n".join(f"  `{f.name}` {athena_type(f.type)}" for f in SCHEMAS[table])
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS qode_{name or table} (\n{columns}\n)\n"
        "PARTITIONED BY (`dt` string)\n"
        "STORED AS PARQUET\n"
        f"LOCATION '{location}'\n"
        "TBLPROPERTIES (\n"
        "  'projection.enabled' = 'true',\n"
        "  'projection.dt.type' = 'date',\n"
        "  'projection.dt.format' = 'yyyy-MM-dd',\n"
        "  'projection.dt.range' = '2000-01-01,NOW',\n"
        "  'projection.dt.interval' = '1',\n"
        "  'projection.dt.interval.unit' = 'DAYS',\n"
        f"  'storage.location.template' = '{location}dt=${{dt}}/'\n"
        ");"
    )
