"""``make demo-ui``: the real Airflow stack left running, to watch the DAGs in the UI.

Starts the Qode stand-in and moto's S3 server on loopback, then api-server, scheduler
(LocalExecutor), dag-processor and triggerer with the same launcher as the end-to-end test
(``airflow_provider_qode.sandbox.airflow_stack``), in a fresh ``AIRFLOW_HOME`` under
``.local/demo-ui/``. It triggers one ingestion run (mapped chunks) and one report-sensor run
(deferred to the triggerer), prints the UI's URL and login, and keeps everything running until
Ctrl-C, when it stops every process it started. Nothing here needs the internet.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".local" / "demo-ui"
BUCKET = "qode-lake"
PREFIX = "qode"
TOKEN = "demo-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=60, help="interviews in the stand-in")
    parser.add_argument("--chunk-size", type=int, default=20, help="ids per mapped task")
    parser.add_argument("--port", type=int, default=0, help="UI/API port (default: a free one)")
    parser.add_argument("--no-runs", action="store_true", help="start the stack, trigger nothing")
    args = parser.parse_args(argv)

    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    from airflow_provider_qode.hooks.qode import INTERVIEWS_PATH
    from airflow_provider_qode.sandbox.airflow_stack import AirflowStack, connection_env
    from airflow_provider_qode.sandbox.generator import SandboxDataset
    from airflow_provider_qode.sandbox.server import SandboxServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    dataset = SandboxDataset(seed=1, count=args.count, broken_share=0.25)
    sandbox = SandboxServer(dataset, token=TOKEN, report_after_gets=2).start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    s3_endpoint = f"http://{host}:{port}"
    env = connection_env(sandbox.base_url, TOKEN, s3_endpoint)
    env.update({"QODE_LAKE_BUCKET": BUCKET, "QODE_LAKE_PREFIX": PREFIX})
    stack = AirflowStack(home=WORK / "airflow", dags_folder=ROOT / "dags", env=env, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        print(f"Qode stand-in: {sandbox.base_url}\nS3 (moto):     {s3_endpoint}")
        print(f"Starting Airflow in {stack.home} (logs: {stack.log_dir}) ...", flush=True)
        stack.start()
        stack.wait_for_dags(["qode_interview_ingestion", "qode_report_sensor"])
        for dag_id in ("qode_interview_ingestion", "qode_report_sensor"):
            stack.unpause(dag_id)
        print(f"Airflow is up after {stack.timings['start_s']:.0f}s")
        if not args.no_runs:
            conf = {"interview_ids": dataset.ids, "s3_bucket": BUCKET, "s3_prefix": PREFIX}
            run_id = stack.trigger(
                "qode_interview_ingestion", {**conf, "chunk_size": args.chunk_size}
            )
            print(f"Triggered qode_interview_ingestion: {run_id}")
            # Its report comes on the third read: the sensor defers for one poll (60 s) meanwhile.
            created = httpx.post(
                f"{sandbox.base_url}{INTERVIEWS_PATH}",
                json={"email": "ada@example.com", "interview_type": "SOFTWARE_ENGINEER"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            created.raise_for_status()
            sensor_conf = {"interview_id": created.json()["interview_id"], "s3_bucket": BUCKET}
            print(
                f"Triggered qode_report_sensor: {stack.trigger('qode_report_sensor', sensor_conf)}"
            )
        print(
            f"\n  UI:       {stack.url}\n  login:    admin / {stack.password}\n"
            f"  REST API: {stack.url}/api/v2 (JWT from POST {stack.url}/auth/token)\n"
            "\nTrigger more runs from the UI (conf: interview_ids, s3_bucket, s3_prefix, "
            "chunk_size). Ctrl-C stops everything.",
            flush=True,
        )
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping Airflow, S3 and the stand-in ...", flush=True)
        stack.stop()
        moto.stop()
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
