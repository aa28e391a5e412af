"""The example DAGs under a real Airflow 3.3 stack: scheduler + LocalExecutor, dag-processor,
triggerer and api-server, driven through the REST API with a JWT from the simple auth manager.

What ``dag.test()`` cannot show: mapped chunks run as separate task processes side by side, the
report sensor really defers to the triggerer process and resumes in a new task process, and the
Asset event of a run names the bucket that run wrote. Timings are printed (``-s``), not asserted.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_qode.lake.layout import LakeLayout
from airflow_provider_qode.operators.interviews import lake_asset
from airflow_provider_qode.sandbox.airflow_stack import AirflowStack
from tests.fixtures.airflow_stack import DEFAULT_BUCKET, tails_on_failure
from tests.fixtures.sandbox import point_qode_conn

# A generous ceiling: on a loaded 2-core machine the stack alone can take minutes to start.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

INGESTION = "qode_interview_ingestion"
SENSOR = "qode_report_sensor"
PREFIX = "e2e"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _objects(s3_client, bucket: str) -> dict[str, str]:
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for p in pages for o in p.get("Contents", [])}


def _read(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _run(stack: AirflowStack, dag_id: str, conf: dict[str, Any]) -> tuple[str, dict, float]:
    """Trigger through the REST API, wait; the run id, the run and its wall time in seconds."""
    run_id = stack.trigger(dag_id, conf)
    run = stack.wait_for_run(dag_id, run_id)
    assert run["state"] == "success", run
    return run_id, run, (_when(run["end_date"]) - _when(run["queued_at"])).total_seconds()


def _states_until_done(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> list:
    """Poll one task instance's state while the run lasts; the distinct states seen, in order."""
    seen: list[str | None] = []
    run_path = f"/dags/{dag_id}/dagRuns/{run_id}"
    deadline = time.monotonic() + 300
    while stack.api("GET", run_path)["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline, f"{dag_id} still running, {task_id} went {seen}"
        state = stack.api("GET", f"{run_path}/taskInstances/{task_id}")["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.3)
    return seen


def _events(stack: AirflowStack, dag_id: str, run_id: str) -> list[dict]:
    params = {"source_dag_id": dag_id, "source_run_id": run_id, "limit": 100}
    return stack.api("GET", "/assets/events", params=params)["asset_events"]


def _log_events(path: Path, prefix: str) -> list[dict]:
    """The JSON log lines of ``path`` whose event starts with ``prefix``."""
    lines = (json.loads(line) for line in path.read_text().splitlines() if line.startswith("{"))
    return [ln for ln in lines if str(ln.get("event", "")).startswith(prefix)]


def _summary(stack: AirflowStack, run_id: str) -> dict:
    path = f"/dags/{INGESTION}/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/return_value"
    value = stack.api("GET", path, params={"deserialize": True})["value"]
    return value if isinstance(value, dict) else json.loads(value)


def test_mapped_chunks_run_in_separate_processes_land_once_and_name_their_lake(
    airflow_stack: AirflowStack, sandbox_dataset, s3_client, s3_bucket
):
    stack = airflow_stack
    ids = sandbox_dataset.ids
    conf = {"interview_ids": ids, "s3_bucket": s3_bucket, "s3_prefix": PREFIX, "chunk_size": 34}
    with tails_on_failure(stack):
        run_id, _, wall = _run(stack, INGESTION, conf)
        tis = stack.task_instances(INGESTION, run_id)

    chunks = sorted((t for t in tis if t["task_id"] == "land_chunk"), key=lambda t: t["map_index"])
    assert [t["map_index"] for t in chunks] == [0, 1]  # 67 ids in chunks of 34: two processes
    assert all(t["state"] == "success" and t["executor"] in (None, "LocalExecutor") for t in chunks)
    # Chunks landing side by side never trip over each other: each succeeded on its first try.
    assert [t["try_number"] for t in chunks] == [1, 1]
    # Each chunk in a task process of its own, none of them a stack process.
    pids = [t["pid"] for t in chunks]
    assert None not in pids and len(set(pids)) == len(pids)
    assert not set(pids) & {p.pid for p in stack.processes.values()}
    spans = [(_when(t["start_date"]), _when(t["end_date"])) for t in chunks]
    overlapping = sum(
        1 for i, a in enumerate(spans) for b in spans[i + 1 :] if max(a[0], b[0]) < min(a[1], b[1])
    )
    print(
        f"\n[e2e] stack start {stack.timings['start_s']:.1f}s "
        f"(db migrate {stack.timings['db_migrate_s']:.1f}s); ingestion run {wall:.1f}s; "
        f"chunks {[round(t['duration'], 1) for t in chunks]}s, pids {pids}, "
        f"{overlapping} overlapping pair(s)"
    )

    # The lake: every id in exactly one place.
    layout = LakeLayout(PREFIX)
    objects = _objects(s3_client, s3_bucket)
    published = set()
    for interview_id in ids:
        index = json.loads(_read(s3_client, s3_bucket, layout.index_key(interview_id)))
        verdict = sandbox_dataset.expected(interview_id).verdict
        if verdict == "published":
            assert index["state"] == "published", interview_id
            body = _read(s3_client, s3_bucket, index["key"])
            assert body == sandbox_dataset.body(interview_id)
            published.add(interview_id)
        else:
            assert index["state"] == "quarantined", interview_id
            assert index["quarantine"]["key"] in objects
    jsons = [k for k in objects if k.endswith("/interview.json")]
    assert len(jsons) == len(ids)  # published + quarantined copies, one each
    assert published and len(published) < len(ids)
    assert not any(k.startswith(DEFAULT_BUCKET) for k in objects)

    # One Asset event for the run, from summarize, for the bucket in the run's conf.
    [event] = _events(stack, INGESTION, run_id)
    assert event["uri"] == lake_asset(s3_bucket, PREFIX).uri == f"s3://{s3_bucket}/e2e/interviews"
    assert event["source_task_id"] == "summarize"
    assert event["extra"]["published"] == len(published)
    assert event["extra"]["requested"] == len(ids) and len(event["extra"]["manifest_uris"]) == 2

    # A rerun changes nothing and, having published nothing new, emits no event.
    with tails_on_failure(stack):
        rerun_id, _, rewall = _run(stack, INGESTION, conf)
    after = _objects(s3_client, s3_bucket)

    def data(listing: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in listing.items() if f"{PREFIX}/interviews/" in k}

    assert data(after) == data(objects)
    assert set(k for k in after if "/quarantine/" in k) == set(
        k for k in objects if "/quarantine/" in k
    )
    assert _summary(stack, rerun_id)["unchanged"] == len(published)
    assert _events(stack, INGESTION, rerun_id) == []
    print(f"[e2e] rerun {rewall:.1f}s")


def test_report_sensor_defers_to_the_triggerer_and_resumes(
    airflow_stack: AirflowStack, stack_sandbox, s3_client, s3_bucket, monkeypatch
):
    from airflow_provider_qode.hooks.qode import QodeHook

    stack = airflow_stack
    point_qode_conn(monkeypatch, stack_sandbox.base_url)
    with QodeHook() as hook:
        created = hook.create_interview(
            email="ada@example.com", interview_type="SOFTWARE_ENGINEER", role_title="Data Engineer"
        )
    interview_id = created.interview_id
    # The task's poke sees SCHEDULED; the trigger's poll hangs for 10 s, then gets the report.
    # The hang keeps the task deferred long enough to be seen through the REST API, and for
    # the scheduler to take in the deferring process's exit before the task resumes (were it
    # to come after, Airflow would take the running resumed task for one killed externally).
    stack_sandbox.set_faults(hang_seconds=10)
    stack_sandbox.script(interview_id, [200, "hang"])
    conf = {"interview_id": interview_id, "s3_bucket": s3_bucket, "s3_prefix": PREFIX}
    with tails_on_failure(stack):
        run_id = stack.trigger(SENSOR, conf)
        seen = _states_until_done(stack, SENSOR, run_id, "wait_for_report")
        run = stack.api("GET", f"/dags/{SENSOR}/dagRuns/{run_id}")
        assert run["state"] == "success", run
        wall = (_when(run["end_date"]) - _when(run["queued_at"])).total_seconds()
        [wait] = [
            t for t in stack.task_instances(SENSOR, run_id) if t["task_id"] == "wait_for_report"
        ]
        triggerers = stack.api("GET", "/jobs", params={"job_type": "TriggererJob"})["jobs"]

    # The task paused as deferred and came back (same try) to execute_complete.
    assert wait["state"] == "success" and wait["try_number"] == 1
    task_log = stack.task_log(SENSOR, run_id, "wait_for_report")
    [paused] = _log_events(task_log, "Pausing task as DEFERRED")
    [resumed] = _log_events(task_log, f"Interview {interview_id}: report generated")
    # The trigger ran in the triggerer: its log is the triggerer job's, and it fired there.
    [trigger_log] = task_log.parent.glob("attempt=1.log.trigger.*.log")
    job_id = int(trigger_log.name.rsplit(".", 2)[-2])
    assert job_id in {j["id"] for j in triggerers}
    [started] = _log_events(trigger_log, f"trigger {SENSOR}/")  # "trigger <name> starting"
    [fired] = _log_events(trigger_log, "Trigger fired event")
    assert "REPORT_GENERATED" in fired["result"] and interview_id in fired["result"]
    # In that order: paused, trigger started, fired, resumed in a task process again.
    moments = [_when(e["timestamp"]) for e in (paused, started, fired, resumed)]
    assert moments == sorted(moments)
    # The stand-in saw the task's poke, the trigger's poll and the landing's read(s).
    assert stack_sandbox.stats()["by_id"][interview_id] >= 3

    index = json.loads(_read(s3_client, s3_bucket, LakeLayout(PREFIX).index_key(interview_id)))
    assert index["state"] == "published"
    [event] = _events(stack, SENSOR, run_id)
    assert event["uri"] == lake_asset(s3_bucket, PREFIX).uri
    assert event["source_task_id"] == "land_interview" and event["extra"]["published"] == 1

    assert "deferred" in seen, seen  # also visible to any API client while it waited
    pickup, ran, back = ((b - a).total_seconds() for a, b in itertools.pairwise(moments))
    print(
        f"\n[e2e] sensor run {wall:.1f}s; wait_for_report {wait['duration']:.1f}s in all: "
        f"deferred -> trigger started in triggerer job {job_id} {pickup:.1f}s, trigger ran "
        f"{ran:.2f}s, fired -> resumed in a task process {back:.1f}s"
    )
