"""A chunk of gzip bombs costs little memory: measured in a fresh process, not timed.

Each bomb is about 40 KB on the wire and 40 MiB inflated, past the default 32 MiB
``max_body_bytes``. The client runs in a subprocess (so its peak RSS is its own) with the
connection defaults; the bombs come from a loopback server in this process. Both the peak RSS
(``VmHWM``) and the peak of Python allocations (tracemalloc) must stay under the bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.fixtures.hostile import HostileServer, Reply, gzip_bomb

MIB = 1024 * 1024
BOMBS = 100
#: The issue's target: 100 bombs in one chunk add less than 200 MiB of peak RSS.
PEAK_GROWTH_LIMIT_MIB = 200

CLIENT = textwrap.dedent(
    """
    import asyncio, json, sys, tracemalloc

    from airflow_provider_qode.hooks.connection import QodeConnectionConfig
    from airflow_provider_qode.hooks.qode import QodeAsyncClient

    base_url, count = sys.argv[1], int(sys.argv[2])
    config = QodeConnectionConfig(base_url=base_url, token="memory-test-token", max_retries=0)

    async def fetch(ids):
        async with QodeAsyncClient(config) as client:
            return await client.fetch_many(ids)

    def status_mib(field):
        # VmHWM is this process's own peak RSS; ru_maxrss would also count the parent's RSS
        # at fork time (Linux keeps it across exec), which can hide everything measured here.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(field)

    asyncio.run(fetch(["warm-up"]))  # imports, the event loop, one small answer
    before = status_mib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM to the current RSS
    except OSError:
        before = status_mib("VmHWM")
    tracemalloc.start()
    results = asyncio.run(fetch([f"bomb-{i}" for i in range(count)]))
    after = status_mib("VmHWM")  # the results are still held, as the chunk holds them
    print(json.dumps({
        "before_mib": before,
        "after_mib": after,
        "python_peak_mib": tracemalloc.get_traced_memory()[1] / 2**20,
        "errors": sorted({type(r.error).__name__ for r in results}),
        "kept_bytes": max(len(r.raw or b"") for r in results),
        "tracebacks": sum(r.error is not None and r.error.__traceback__ is not None
                          for r in results),
        "max_body_bytes": config.max_body_bytes,
    }))
    """
)


@pytest.mark.parametrize("trickle", [0.0, 0.005], ids=["burst", "trickled"])
def test_a_chunk_of_gzip_bombs_adds_little_peak_memory(trickle):
    """Burst: each bomb arrives at once. Trickled: in 4 KiB pieces, so the 32 requests in flight
    all inflate at the same time, and only the large-body slots keep that bounded."""
    bomb = gzip_bomb(40 * MIB)
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}

    def route(request):
        if request.path.endswith("/warm-up"):
            return Reply(200, b'{"interview_id": "warm-up"}')
        return Reply(200, bomb, headers, trickle=trickle)

    with HostileServer(route) as server:
        done = subprocess.run(
            [sys.executable, "-c", CLIENT, server.base_url, str(BOMBS)],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{BOMBS} gzip bombs of {len(bomb)} bytes each: {figures}")
    assert len(server.seen) == BOMBS + 1
    assert figures["max_body_bytes"] < 40 * MIB  # each bomb really is over the limit
    assert figures["errors"] == ["QodeResponseError"]
    assert figures["kept_bytes"] <= 64 * 1024
    assert figures["tracebacks"] == 0
    growth = figures["after_mib"] - figures["before_mib"]
    assert growth < PEAK_GROWTH_LIMIT_MIB, figures
    assert figures["python_peak_mib"] < PEAK_GROWTH_LIMIT_MIB, figures
