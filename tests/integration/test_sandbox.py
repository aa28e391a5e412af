"""The sandbox over real HTTP: bytes, auth, errors, faults, replay, streaming and the CLI."""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from airflow_provider_qode.sandbox import cli as sandbox_cli
from airflow_provider_qode.sandbox.generator import SandboxDataset, blob_sha256
from airflow_provider_qode.sandbox.server import (
    SERVICE_UNAVAILABLE_HTML,
    FaultConfig,
    SandboxAdmin,
    SandboxServer,
    parse_outcome,
    run_sandbox_process,
)

TOKEN = "test-token"
DETAILS = "/integrations/candidates/interviews"


def _client(server: SandboxServer, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10, trust_env=False)


@pytest.fixture
def client(sandbox_reset: SandboxServer):
    with _client(sandbox_reset) as c:
        yield c


# --- the happy path and the documented errors ----------------------------------------------------


def test_every_body_is_served_byte_for_byte(client, sandbox_dataset: SandboxDataset):
    for interview_id in sandbox_dataset.ids:
        response = client.get(f"{DETAILS}/{interview_id}")
        assert response.status_code == 200
        assert response.content == sandbox_dataset.body(interview_id)
        if response.content[:1] == b"{":
            assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_bad_or_missing_token_is_401(sandbox_reset, sandbox_dataset, token):
    with _client(sandbox_reset, token) as c:
        first = sandbox_dataset.ids[0]
        for path in (f"{DETAILS}/{first}", f"/assets/identity/{first}.png"):
            response = c.get(path)
            assert response.status_code == 401
            assert response.json()["status"] == 401
        assert c.post(DETAILS, json={"email": "a@b.c", "interview_type": "STEM"}).status_code == 401


def test_unknown_and_unsafe_ids_are_404(client):
    for bad in ("no-such-interview", "a..b"):
        response = client.get(f"{DETAILS}/{bad}")
        assert response.status_code == 404
        assert response.json() == {"status": 404, "errors": "Interview not found"}
    assert client.get("/no/such/endpoint").status_code == 404


# --- create --------------------------------------------------------------------------------------


def test_create_is_not_idempotent_and_interviews_move_on(client, sandbox_reset):
    request = {
        "email": "ada@example.com",
        "interview_type": "SOFTWARE_ENGINEER_CODING",
        "role_title": "Backend Developer",
        "language": "en",
        "metadata": {"req": 1},
    }
    first, second = client.post(DETAILS, json=request), client.post(DETAILS, json=request)
    assert first.status_code == second.status_code == 200
    a, b = first.json(), second.json()
    assert a["interview_id"] != b["interview_id"]
    assert a["interview_id"].endswith("_" + a["candidate_id"])
    assert a["talent_id"] is None and a["completion_status"] == "SCHEDULED"
    assert a["expires_at"].endswith("Z") and a["email"] == request["email"]

    scheduled = client.get(f"{DETAILS}/{a['interview_id']}").json()
    assert scheduled["status"] == "SCHEDULED" and scheduled["request_metadata"] == {"req": 1}
    sandbox_reset.set_status(a["interview_id"], "report_generated")
    report = client.get(f"{DETAILS}/{a['interview_id']}").json()
    assert report["status"] == "REPORT_GENERATED"
    assert report["code_task_result"]["tasks"] and report["role_title"] == "Backend Developer"
    assert client.get(f"/assets/identity/{a['interview_id']}.png").content[:4] == b"\x89PNG"


def test_create_validates_its_body(client):
    assert client.post(DETAILS, content=b"not json").status_code == 400
    missing = client.post(DETAILS, json={"interview_type": "STEM"})
    assert missing.status_code == 422 and missing.json()["status"] == 422
    assert any("email" in e for e in missing.json()["errors"])
    wrong_type = client.post(DETAILS, json={"email": "a@b.c", "interview_type": "TURING_STEM"})
    assert wrong_type.status_code == 422
    bad_lang = client.post(
        DETAILS, json={"email": "a@b.c", "interview_type": "STEM", "language": "xx"}
    )
    assert bad_lang.status_code == 422


def test_created_interview_reports_after_n_gets(sandbox_factory):
    server = sandbox_factory(SandboxDataset(count=1), report_after_gets=2)
    with _client(server) as c:
        interview_id = c.post(DETAILS, json={"email": "a@b.c", "interview_type": "STEM"}).json()[
            "interview_id"
        ]
        statuses = [c.get(f"{DETAILS}/{interview_id}").json()["status"] for _ in range(3)]
    assert statuses == ["SCHEDULED", "SCHEDULED", "REPORT_GENERATED"]


# --- faults --------------------------------------------------------------------------------------


def test_scripted_faults_happen_in_order_and_are_counted(client, sandbox_reset, sandbox_dataset):
    target = sandbox_dataset.ids[1]
    body = sandbox_dataset.body(target)
    sandbox_reset.script(target, [503, 500, 429, "malformed", "slow", 200])
    seen = []
    for _ in range(7):
        started = time.monotonic()
        response = client.get(f"{DETAILS}/{target}")
        seen.append((response.status_code, response.content, time.monotonic() - started))
    assert [s for s, _, _ in seen] == [503, 500, 429, 200, 200, 200, 200]
    assert seen[0][1] == SERVICE_UNAVAILABLE_HTML
    assert json.loads(seen[1][1]) == {"status": 500, "errors": "Internal Server Error"}
    assert seen[3][1] == body[: len(body) // 2]  # truncated JSON
    assert seen[4][1] == body and seen[4][2] >= 0.3  # 8 pieces, 50 ms apart
    assert seen[5][1] == seen[6][1] == body

    client.get(f"{DETAILS}/unknown-id")
    stats = sandbox_reset.stats()
    assert stats["by_id"] == {target: 7, "unknown-id": 1}
    assert stats["total"] == 8
    assert stats["by_path"] == {f"GET {DETAILS}/{{interview_id}}": 8}
    sandbox_reset.reset()
    assert sandbox_reset.stats()["total"] == 0


def test_429_carries_retry_after_in_seconds_or_as_a_date(client, sandbox_reset, sandbox_dataset):
    target = sandbox_dataset.ids[2]
    sandbox_reset.set_faults(retry_after=7)
    sandbox_reset.script(
        target,
        [429, {"status": 429, "retry_after": "+30"}, {"status": 429, "retry_after": None}],
    )
    first, second, third = (client.get(f"{DETAILS}/{target}") for _ in range(3))
    assert first.status_code == 429 and first.headers["retry-after"] == "7"
    when = email.utils.parsedate_to_datetime(second.headers["retry-after"])
    assert 20 < (when - datetime.now(UTC)).total_seconds() <= 31
    assert third.status_code == 429 and "retry-after" not in third.headers
    assert first.json() == {"status": 429, "errors": "Too Many Requests"}


def test_dropped_connection_is_a_transport_error(client, sandbox_reset, sandbox_dataset):
    target = sandbox_dataset.ids[3]
    sandbox_reset.script(target, ["drop"])
    with pytest.raises(httpx.TransportError):
        client.get(f"{DETAILS}/{target}")
    assert client.get(f"{DETAILS}/{target}").content == sandbox_dataset.body(target)


def test_hang_outlasts_a_client_timeout(sandbox_factory):
    dataset = SandboxDataset(count=1)
    server = sandbox_factory(dataset, faults={"hang_seconds": 3})
    server.script(dataset.ids[0], ["hang"])
    with _client(server) as c, pytest.raises(httpx.ReadTimeout):
        c.get(f"{DETAILS}/{dataset.ids[0]}", timeout=0.3)


def test_rate_faults_are_deterministic_per_seed(sandbox_factory):
    dataset = SandboxDataset(seed=5, count=30)
    faults = {"rate_429": 0.2, "rate_5xx": 0.2, "rate_malformed": 0.1, "seed": 9}
    runs = []
    for _ in range(2):
        server = sandbox_factory(dataset, faults=faults)
        with _client(server) as c:
            runs.append([c.get(f"{DETAILS}/{i}").status_code for i in dataset.ids * 2])
        server.stop()
    assert runs[0] == runs[1]
    assert {429, 200} <= set(runs[0]) and ({500, 503} & set(runs[0]))
    assert 10 <= sum(code != 200 for code in runs[0]) <= 40


def test_latency_is_added_without_blocking_other_requests(sandbox_factory):
    dataset = SandboxDataset(count=20)
    server = sandbox_factory(dataset, latency_ms=200)

    async def fetch_all() -> float:
        import asyncio

        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as c:
            started = time.monotonic()
            responses = await asyncio.gather(*(c.get(f"{DETAILS}/{i}") for i in dataset.ids))
            assert all(r.status_code == 200 for r in responses)
            return time.monotonic() - started

    import asyncio

    elapsed = asyncio.run(fetch_all())
    assert 0.2 <= elapsed < 3.0  # 20 requests x 200 ms would take 4 s if they queued


def test_fault_admin_refuses_nonsense(sandbox_reset):
    base = f"{sandbox_reset.base_url}/_sandbox/faults"
    for bad in ({"rate_429": 2}, {"nope": 1}, {"script": {"x": ["explode"]}}, {"script": []}):
        assert httpx.post(base, json=bad).status_code == 400
    state = httpx.get(base).json()
    assert state["rate_429"] == 0 and state["script"] == {}
    with pytest.raises(ValueError):
        parse_outcome(302)
    assert parse_outcome("503").status == 503
    assert FaultConfig(rate_5xx=1.0).draw("k", 1) is not None


# --- admin reads ---------------------------------------------------------------------------------


def test_expected_events_and_ids_endpoints(sandbox_reset, sandbox_dataset):
    admin = SandboxAdmin(sandbox_reset.base_url)
    expected = admin.expected()
    assert set(expected) == set(sandbox_dataset.ids) == set(admin.ids())
    for interview_id, want in expected.items():
        got = sandbox_dataset.expected(interview_id)
        assert (want["verdict"], want["failed_rules"], want["warnings"]) == (
            got.verdict,
            got.failed_rules,
            got.warnings,
        )
    day = sandbox_dataset.dates()[1]
    events = httpx.get(f"{sandbox_reset.base_url}/_sandbox/events", params={"date": str(day)})
    assert events.status_code == 200
    assert events.content == sandbox_dataset.events_jsonl(day)
    assert events.headers["content-type"] == "application/x-ndjson"
    bad = httpx.get(f"{sandbox_reset.base_url}/_sandbox/events", params={"date": "yesterday"})
    assert bad.status_code == 400


# --- assets --------------------------------------------------------------------------------------


def test_identity_asset_and_offsite_redirect(client, sandbox_dataset):
    interview_id = sandbox_dataset.ids[0]
    png = client.get(f"/assets/identity/{interview_id}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == sandbox_dataset.asset(interview_id)
    assert client.get("/assets/identity/unknown.png").status_code == 404
    redirect = client.get("/assets/redirect-offsite")
    assert redirect.status_code == 302
    assert redirect.headers["location"] == "http://example.invalid/x.png"
    onsite_path = f"/assets/redirect-onsite/identity/{interview_id}.png"
    onsite = client.get(onsite_path, follow_redirects=True)
    assert onsite.content == png.content


def test_blob_is_streamed_with_the_right_length(client):
    size = 20 * 1024 * 1024 + 7
    digest = hashlib.sha256()
    received = 0
    with client.stream("GET", f"/assets/blob/{size}.bin") as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == size
        for piece in response.iter_bytes():
            digest.update(piece)
            received += len(piece)
    assert received == size and digest.hexdigest() == blob_sha256(size)
    assert client.get("/assets/blob/lots.bin").status_code == 404


# --- replay --------------------------------------------------------------------------------------


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    root = tmp_path / "replay"
    (root / "assets" / "identity").mkdir(parents=True)
    (root / "abc_def.json").write_bytes(b'{"interview_id": "abc_def",  "weird":\t1}\n')
    (root / "html_page.json").write_bytes(b"<html><body>Gateway Timeout</body></html>")
    (root / "assets" / "identity" / "abc_def.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "secret.txt").write_text("do not serve")
    os.symlink(tmp_path / "secret.txt", root / "assets" / "link.txt")
    return root


def test_replay_serves_files_byte_for_byte(sandbox_factory, replay_dir: Path):
    server = sandbox_factory(replay_dir)
    with _client(server) as c:
        for name in ("abc_def", "html_page"):
            response = c.get(f"{DETAILS}/{name}")
            assert response.status_code == 200
            assert response.content == (replay_dir / f"{name}.json").read_bytes()
        assert c.get(f"{DETAILS}/missing").status_code == 404
        asset = c.get("/assets/identity/abc_def.png")
        assert asset.content == b"\x89PNG fake" and asset.headers["content-type"] == "image/png"
        assert c.get("/assets/identity/missing.png").status_code == 404
        for raw_path in (
            b"/api/v1/assets/%2e%2e/%2e%2e/secret.txt",
            b"/api/v1/assets/identity/%2E%2E%2F%2E%2E%2F..%2Fsecret.txt",
            b"/api/v1/assets/link.txt",
        ):
            url = httpx.URL(server.url).copy_with(raw_path=raw_path)
            response = c.get(url)
            assert response.status_code in (400, 404), raw_path
            assert b"do not serve" not in response.content
        assert SandboxAdmin(server.base_url).ids() == ["abc_def", "html_page"]


def test_dumped_dataset_replays_identically(sandbox_factory, tmp_path: Path):
    dataset = SandboxDataset(seed=8, count=6, broken_share=0.5)
    server = sandbox_factory(dataset.dump(tmp_path / "dump"))
    with _client(server) as c:
        for interview_id in dataset.ids:
            assert c.get(f"{DETAILS}/{interview_id}").content == dataset.body(interview_id)
            png = c.get(f"/assets/identity/{interview_id}.png").content
            assert png == dataset.asset(interview_id)
    assert SandboxAdmin(server.base_url).expected()[dataset.ids[0]]["verdict"]


# --- fixtures and CLI ----------------------------------------------------------------------------


def test_qode_conn_env_points_at_the_sandbox(qode_conn_env, sandbox):
    conn = json.loads(os.environ["AIRFLOW_CONN_QODE_DEFAULT"])
    assert qode_conn_env == "qode_default"
    assert conn["host"] == sandbox.base_url and conn["password"] == TOKEN
    assert conn["extra"]["allowed_asset_hosts"] == ["127.0.0.1"]


def test_register_adds_the_sandbox_subcommand():
    parser = argparse.ArgumentParser()
    sandbox_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sandbox", "--port", "0", "--rate-429", "0.1", "--retry-after", "+5"])
    assert args.run is sandbox_cli.run and args.port == 0 and args.retry_after == "+5"
    assert args.rate_429 == 0.1 and args.host == "127.0.0.1" and args.token == "sandbox-token"


def test_cli_process_prints_a_url_that_answers_and_stops_on_sigterm():
    proc, base_url = run_sandbox_process(["--count", "5", "--seed", "4", "--token", "cli-token"])
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/api/v1")
        ids = SandboxAdmin(base_url).ids()
        response = httpx.get(
            f"{base_url}{DETAILS}/{ids[0]}", headers={"Authorization": "Bearer cli-token"}
        )
        assert response.content == SandboxDataset(seed=4, count=5).body(ids[0])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout is not None
        proc.stdout.close()
