"""``make demo``: the real ingestion DAG end to end on this machine, then what landed.

Starts the Qode stand-in (some interviews broken on purpose) and moto's S3 server on loopback,
writes the day's interview events to S3, runs ``airflow dags test qode_interview_ingestion``
against them with a SQLite Airflow home under ``.local/``, prints what the tasks logged, the lake
as a tree with counts per partition and every quarantined id with its reasons, copies the landed
objects to ``.local/demo/lake/`` for browsing, says where the manifest and the quality report
are, ends with a DuckDB query over the curated Parquet tables (read through DuckDB's httpfs
extension from the demo's S3 server), and stops the servers. Nothing here needs the internet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where the demo keeps its Airflow home, logs and the copy of the lake (tests point it elsewhere).
WORK = Path(os.environ.get("QODE_DEMO_DIR") or ROOT / ".local" / "demo")
BUCKET = "qode-lake"
PREFIX = "qode"
DAY = "2025-11-20"  # the day whose interviews land
# A run's data interval is the day before its logical date (CronDataIntervalTimetable).
RUN_DATE = "2025-11-21"
TOKEN = "demo-token"
#: A task log line of the provider's loggers: time, [level], message, [logger], key=values.
PROVIDER_LINE = re.compile(
    r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+"
    r"\[(?:airflow\.task\.operators\.)?airflow_provider_qode[\w.]*\]"
)


def _start_sandbox(count: int, broken_share: float, seed: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_qode.cli",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--seed",
            str(seed),
            "--count",
            str(count),
            "--broken-share",
            str(broken_share),
            "--start-date",
            DAY,
            "--days",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http"):
        process.kill()
        raise SystemExit(f"the stand-in did not start: {line!r}")
    return process, line


def _airflow_env(base_url: str, s3_endpoint: str) -> dict[str, str]:
    from airflow_provider_qode.sandbox.airflow_stack import connection_env

    home = WORK / "airflow"
    env = {key: value for key, value in os.environ.items() if not key.upper().endswith("_PROXY")}
    env.update(connection_env(base_url, TOKEN, s3_endpoint))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AWS_EC2_METADATA_DISABLED": "true",
            "GX_ANALYTICS_ENABLED": "False",
            "QODE_LAKE_BUCKET": BUCKET,
            "QODE_LAKE_PREFIX": PREFIX,
            "NO_PROXY": "*",
        }
    )
    return env


def _show_lake(s3, keys: list[str]) -> None:  # noqa: ANN001
    published = Counter[str]()
    quarantine: list[dict] = []
    other = Counter[str]()
    for key in keys:
        parts = key.split("/")
        if parts[1] == "interviews" and key.endswith("interview.json"):
            published["/".join(parts[2:4])] += 1
        elif parts[1] == "quarantine" and key.endswith("reasons.json"):
            quarantine.append(json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
        elif parts[1] not in ("interviews", "quarantine"):
            other[parts[1]] += 1
    print(f"\ns3://{BUCKET}/{PREFIX}/  ({len(keys)} objects)")
    print("  interviews/")
    for partition, count in sorted(published.items()):
        print(f"    {partition:<60} {count:>4} interview(s)")
    print(f"  quarantine/  {len(quarantine)} interview(s)")
    for doc in sorted(quarantine, key=lambda d: d["interview_id"]):
        print(f"    {doc['interview_id']}  {', '.join(doc['failed_rules'])}")
        for reason in doc.get("reasons") or ["(no reason recorded)"]:
            print(f"        {reason}")
    for folder, count in sorted(other.items()):
        print(f"  {folder}/  {count} object(s)")
    total = sum(published.values())
    print(f"\npublished={total} quarantined={len(quarantine)}")


def _show_task_lines(lines: list[str]) -> None:
    """The provider's own log lines (events, progress, report and manifest URIs), message only."""
    print("\nThe tasks logged:")
    for line in lines:
        match = PROVIDER_LINE.match(line)
        if match and not match["message"].startswith("Chunk summary"):
            level = "" if match["level"] == "info" else f"{match['level'].upper()}: "
            print(f"  {level}{match['message']}")


def _show_reports(keys: list[str], copy: Path) -> None:
    """Where each chunk's manifest and quality report are, in S3 and in the local copy."""
    for key in sorted(keys):
        if "/_manifests/" in key:
            label = "Manifest"
        elif "/_quality/" in key:
            label = "Quality report (HTML)" if key.endswith(".html") else "Quality report (JSON)"
        else:
            continue
        print(f"{label}: s3://{BUCKET}/{key}")
        local = (copy / key).resolve()
        print(f"    {local.as_uri() if key.endswith('.html') else local}")


#: The demo's closing query: interviews and mean aggregated score per role partition, shown by
#: its title (one title per partition: the role encoding is injective).
ROLE_QUERY = f"""
SELECT any_value(coalesce(nullif(trim(mapped_role_title), ''), nullif(trim(role_title), ''),
                          '(no title)')) AS role_title,
       count(*) AS interviews, round(avg(aggregated_score), 2) AS mean_score
FROM read_parquet('s3://{BUCKET}/{PREFIX}/curated/interviews/dt=*/*.parquet')
GROUP BY role ORDER BY role_title
""".strip()


def _show_query(endpoint: str) -> None:
    """The closing DuckDB query over the curated interviews table, as a small table."""
    from airflow_provider_qode.sandbox.query import duckdb_over_s3

    rows = duckdb_over_s3(endpoint, "demo", "demo").execute(ROLE_QUERY).fetchall()
    print(f"\nDuckDB over the curated tables (httpfs, {endpoint}):\n{ROLE_QUERY}\n")
    width = max([len("role_title"), *(len(r[0]) for r in rows)])
    print(f"  {'role_title':<{width}}  interviews  mean_score")
    for role, count, mean in rows:
        shown = "" if mean is None else f"{mean:.2f}"
        print(f"  {role:<{width}}  {count:>10}  {shown:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--broken-share", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import logging

    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines

    started = time.perf_counter()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    os.environ.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    sandbox, base_url = _start_sandbox(args.count, args.broken_share, args.seed)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3_endpoint = f"http://{host}:{port}"
    try:
        print(f"Qode stand-in: {base_url}\nS3 (moto):     {s3_endpoint}")
        s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        events = httpx.get(f"{base_url}/_sandbox/events", params={"date": DAY}, timeout=30)
        events.raise_for_status()
        s3.put_object(Bucket=BUCKET, Key=f"events/dt={DAY}/events.jsonl", Body=events.content)
        lines = events.content.count(b"\n")
        print(f"Wrote {lines} interview events for {DAY} to S3")

        env = _airflow_env(base_url, s3_endpoint)
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        print(f"Running: airflow dags test qode_interview_ingestion {RUN_DATE}")
        run = subprocess.run(
            [airflow, "dags", "test", "qode_interview_ingestion", RUN_DATE],
            env=env,
            capture_output=True,
            text=True,
        )
        (WORK / "dags_test.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n")
            raise SystemExit(f"airflow dags test failed (log: {WORK / 'dags_test.log'})")
        print(f"DAG run succeeded (log: {WORK / 'dags_test.log'})")
        lines = (run.stdout + run.stderr).splitlines()
        _show_task_lines(lines)
        starts = [i for i, ln in enumerate(lines) if ln.startswith("partition ")]
        if starts:  # the summarize task's table (the last one printed), as the DAG logged it
            end = next(
                i for i in range(starts[-1], len(lines)) if lines[i].startswith("published=")
            )
            print("\nThe DAG's summary task logged:\n" + "\n".join(lines[starts[-1] : end + 2]))

        keys = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            for obj in page.get("Contents", [])
        ]
        _show_lake(s3, keys)
        copy = WORK / "lake"
        for key in keys:
            target = copy / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        print(f"\nCopied the lake to {copy}")
        _show_reports(keys, copy)
        _show_query(s3_endpoint)
    finally:
        moto.stop()
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print(f"make demo took {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
