"""A real DAG run with the OpenLineage listener and its file transport; the events read back.

``airflow dags test`` in a subprocess: the listener is a plugin, loaded once per process with the
``[openlineage]`` settings of that process, so the run gets its own environment. It fires there
as under a scheduler: the task runner calls it on each task's success (see docs/lineage.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import typing
from collections import Counter
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
import pytest
from openlineage.client import event_v2
from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq
from openlineage.client.facet_v2 import input_statistics_input_dataset as input_stats
from openlineage.client.facet_v2 import output_statistics_output_dataset as output_stats
from openlineage.client.serde import Serde

from airflow_provider_qode.quality.rules import RULES

PREFIX = "lake"
DAG_ID = "qode_interview_ingestion"
#: The facets our operators emit, by key: the client's own classes for them.
FACETS: dict[str, type] = {
    "dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet,
    "inputStatistics": input_stats.InputStatisticsInputDatasetFacet,
    "outputStatistics": output_stats.OutputStatisticsOutputDatasetFacet,
}


# --- the client's attrs classes as the schema ---------------------------------------------------


def _value(tp: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            assert type(None) in args, f"{where}: null not allowed"
            return None
        [tp] = [a for a in args if a is not type(None)]
        return _value(tp, value, where)
    if attr.has(tp):
        return structure(tp, value, where)
    if origin is list:
        assert isinstance(value, list), f"{where}: not a list"
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        assert isinstance(value, dict), f"{where}: not an object"
        if attr.has(args[1]):  # a facets map: only ours, each of the class the map admits
            for key in value:
                assert key in FACETS and issubclass(FACETS[key], args[1]), f"{where}.{key}"
            return {k: structure(FACETS[k], v, f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is Any:
        return value
    assert type(value) is tp, f"{where}: {value!r} is not {tp.__name__}"
    return value


def structure(cls: type, data: Any, where: str = "event") -> Any:
    """Build ``cls`` from its JSON form: an unknown or missing key, or a wrong type, fails."""
    assert isinstance(data, dict), f"{where}: not an object"
    attr.resolve_types(cls)
    data = dict(data)
    kwargs, fixed = {}, {}
    for f in attr.fields(cls):
        if f.init and f.name in data:
            kwargs[f.alias] = _value(f.type, data.pop(f.name), f"{where}.{f.name}")
        elif not f.init and f.name in data:
            fixed[f.name] = data.pop(f.name)
    assert not data, f"{where}: keys {sorted(data)} unknown to {cls.__name__}"
    obj = cls(**kwargs)
    for name, value in fixed.items():  # the schema URL: the client's own for that class
        assert getattr(obj, name) == value, f"{where}.{name}"
    return obj


def validate_event(event: dict) -> None:
    """Our parts of a RunEvent (datasets and their facets) rebuilt with the client's classes,
    and serialised back to the very same JSON."""
    ours = {
        **event,
        "run": {"runId": event["run"]["runId"], "facets": {}},
        "job": {"namespace": event["job"]["namespace"], "name": event["job"]["name"], "facets": {}},
    }
    rebuilt = structure(event_v2.RunEvent, ours)
    assert Serde.to_dict(rebuilt) == ours


# --- the run ------------------------------------------------------------------------------------


def _objects(s3_client, bucket: str) -> dict[str, int]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["Size"] for p in pages for o in p.get("Contents", [])}


def _dags_test(conf: dict, logical_date: str, log_file: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__DISABLED": "false",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "qode-test",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(log_file), "append": True}
        ),
        # The DAG file's outlet Asset names the same lake as the run writes.
        "QODE_LAKE_BUCKET": conf["s3_bucket"],
        "QODE_LAKE_PREFIX": conf["s3_prefix"],
    }
    airflow = Path(sys.executable).parent / "airflow"
    return subprocess.run(
        [str(airflow), "dags", "test", DAG_ID, logical_date, "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _facet(dataset: dict, group: str, key: str) -> dict:
    facet = dict(dataset[group][key])
    facet.pop("_producer"), facet.pop("_schemaURL")
    return facet


def _statistics(objects: dict[str, int], area: str) -> dict[str, int]:
    keys = [k for k in objects if k.startswith(f"{PREFIX}/{area}/")]
    return {
        "rowCount": sum(k.endswith("/interview.json") for k in keys),
        "size": sum(objects[k] for k in keys),
        "fileCount": len(keys),
    }


@pytest.mark.slow
def test_dag_run_emits_the_api_the_lake_and_the_gate_as_openlineage(
    airflow_db,
    qode_conn_env,
    aws_conn_env,
    sandbox,
    sandbox_dataset,
    s3_client,
    s3_bucket,
    tmp_path,
):
    day = sandbox_dataset.dates()[0]
    events_body = sandbox_dataset.events_jsonl(day)
    s3_client.put_object(Bucket=s3_bucket, Key=f"events/dt={day}/part-0.jsonl", Body=events_body)
    s3_client.put_object(Bucket=s3_bucket, Key=f"events/dt={day}/part-1.jsonl", Body=b"{broken\n")
    conf = {"s3_bucket": s3_bucket, "s3_prefix": PREFIX, "events_prefix": f"events/dt={day}/"}
    log_file = tmp_path / "openlineage.jsonl"

    done = _dags_test(conf, (day + timedelta(days=1)).isoformat(), log_file)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    events = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    by_job: dict[tuple[str, str], list[dict]] = {}
    for event in events:
        by_job.setdefault((event["job"]["name"], event["eventType"]), []).append(event)
    [landing] = by_job[(f"{DAG_ID}.land_chunk", "COMPLETE")]
    [listing] = by_job[(f"{DAG_ID}.finished_interview_ids", "COMPLETE")]
    validate_event(landing)
    validate_event(listing)
    assert landing["job"]["namespace"] == "qode-test"

    # Input: the Qode API, host and port as the namespace, the interviews path as the name.
    [api] = landing["inputs"]
    assert api["namespace"] == f"http://127.0.0.1:{urlsplit(sandbox.base_url).port}"
    assert api["name"] == "/api/v1/integrations/candidates/interviews"

    # Outputs: both lake prefixes, with what the chunk wrote there (a first run writes all).
    objects = _objects(s3_client, s3_bucket)
    outputs = {o["name"]: o for o in landing["outputs"]}
    assert set(outputs) == {f"{PREFIX}/interviews", f"{PREFIX}/quarantine"}
    for area in ("interviews", "quarantine"):
        output = outputs[f"{PREFIX}/{area}"]
        assert output["namespace"] == f"s3://{s3_bucket}"
        statistics = _facet(output, "outputFacets", "outputStatistics")
        assert statistics == _statistics(objects, area)
        assert statistics["rowCount"] > 0
    # The START event already names the lake of this run (rendered bucket and prefix, not a
    # parse-time default) and the API, before anything is written.
    [start] = by_job[(f"{DAG_ID}.land_chunk", "START")]
    validate_event(start)
    assert [(o["namespace"], o["name"]) for o in start["outputs"]] == [
        (f"s3://{s3_bucket}", f"{PREFIX}/interviews"),
        (f"s3://{s3_bucket}", f"{PREFIX}/quarantine"),
    ]
    assert [(i["namespace"], i["name"]) for i in start["inputs"]] == [
        (api["namespace"], api["name"])
    ]

    # Assertions: one per rule, failed as often as the stand-in says the gate must fail it.
    landed = [k.rsplit("/", 1)[1].removesuffix(".json") for k in objects if "/_index/" in k]
    assert landed
    fired: Counter[str] = Counter()
    for interview_id in landed:
        expected = sandbox_dataset.expected(interview_id)
        quarantined = expected.verdict == "quarantined"
        fired.update(set(expected.failed_rules if quarantined else expected.warnings))
    assertions = _facet(api, "inputFacets", "dataQualityAssertions")["assertions"]
    by_rule = {a["assertion"]: a for a in assertions}
    assert len(by_rule) == len(assertions) and set(RULES) <= set(by_rule)
    assert {r: a["actual"] for r, a in by_rule.items() if a["actual"] != "0"} == {
        r: str(n) for r, n in fired.items()
    }
    assert all(a["success"] is (a["actual"] == "0") for a in assertions)
    assert {a["success"] for a in assertions} == {True, False}
    assert by_rule["QR-SCORE-01"]["column"] == "aggregated_score"

    # The event-ids task: read the events prefix (every line, the broken one too); no output.
    [read] = listing["inputs"]
    assert (read["namespace"], read["name"]) == (f"s3://{s3_bucket}", f"events/dt={day}")
    lines = sum(1 for line in events_body.splitlines() if line.strip()) + 1
    assert _facet(read, "inputFacets", "inputStatistics") == {"rowCount": lines}
    assert listing["outputs"] == []


def test_the_event_check_refuses_what_the_client_classes_do_not_describe():
    good = {
        "eventTime": "2026-01-01T00:00:00+00:00",
        "eventType": "COMPLETE",
        "producer": "https://example.com/p",
        "schemaURL": event_v2.RunEvent._get_schema(),
        "run": {"runId": "019a7036-5400-7427-83da-35f03761222b", "facets": {}},
        "job": {"namespace": "n", "name": "j", "facets": {}},
        "inputs": [],
        "outputs": [
            {
                "namespace": "s3://b",
                "name": "p/interviews",
                "facets": {},
                "outputFacets": {
                    "outputStatistics": {
                        "_producer": "https://example.com/p",
                        "_schemaURL": output_stats.OutputStatisticsOutputDatasetFacet._get_schema(),
                        "rowCount": 2,
                    }
                },
            }
        ],
    }
    validate_event(good)
    stats = good["outputs"][0]["outputFacets"]["outputStatistics"]
    for broken in (
        {**stats, "rowCount": "2"},  # wrong type
        {**stats, "rows": 2},  # unknown key
        {**stats, "_schemaURL": "https://openlineage.io/spec/x.json"},  # not this facet's schema
    ):
        good["outputs"][0]["outputFacets"]["outputStatistics"] = broken
        with pytest.raises(AssertionError):
            validate_event(good)
    # An input facet among an output's facets is refused too.
    schema = input_stats.InputStatisticsInputDatasetFacet._get_schema()
    good["outputs"][0]["outputFacets"] = {"inputStatistics": {**stats, "_schemaURL": schema}}
    with pytest.raises(AssertionError):
        validate_event(good)
