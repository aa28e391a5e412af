"""docs/lake.md shows the curated tables exactly as the schemas declare them."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_qode.lake.curated.ddl import athena_ddl, column_table
from airflow_provider_qode.lake.curated.schemas import DESCRIPTIONS, SCHEMAS, TABLES

LAKE_MD = (Path(__file__).resolve().parents[2] / "docs" / "lake.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("table", TABLES)
def test_docs_hold_each_tables_columns_and_athena_ddl(table: str):
    assert column_table(table) in LAKE_MD
    assert athena_ddl(table, f"s3://my-bucket/qode/curated/{table}/") in LAKE_MD


@pytest.mark.parametrize("table", TABLES)
def test_every_column_is_described_and_every_description_is_a_column(table: str):
    assert set(DESCRIPTIONS[table]) == {*SCHEMAS[table].names, "dt"}
