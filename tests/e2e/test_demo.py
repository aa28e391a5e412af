"""``make demo`` as a newcomer runs it: the script end to end, and what it promises to show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_lands_the_day_and_says_where_everything_is(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env["QODE_DEMO_DIR"] = str(tmp_path / "demo")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--count", "16", "--seed", "3"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "DAG run succeeded" in out
    # The events task's own line, the landing task's progress and where its records are.
    assert re.search(r"Reading \d+ event file\(s\) under s3://qode-lake/events/dt=", out)
    assert re.search(r"Landed \d+/\d+ \(100%\)", out)
    for label in ("Manifest:", "Quality report (HTML):", "Quality report (JSON):"):
        assert re.search(rf"{re.escape(label)} s3://qode-lake/qode/_", out), label
    # The copied HTML report is a file:// URL that exists on disk.
    [html] = re.findall(r"file://\S+\.html", out)
    assert Path(unquote(urlsplit(html).path)).is_file()
    # Quarantined ids are shown whole, with their rule and reason (25% broken on purpose).
    quarantined = re.findall(r"^\s{4}(\S+_[0-9a-f-]{36})\s+(QR-[A-Z]+-\d+)", out, re.M)
    assert quarantined, out[-3000:]
    assert all(len(i) > 40 for i, _ in quarantined)
    copies = list((tmp_path / "demo" / "lake").rglob("interview.json"))
    assert len(copies) >= 16 * 0.5
    assert out.rstrip().splitlines()[-1].startswith("make demo took")

    # It ends with the DuckDB query over the curated tables: its rows equal what pyarrow reads
    # from the copied curated files, and count every published interview once.
    query = out[out.index("DuckDB over the curated tables") :]
    line = r"^  (?P<title>\S.*?)\s+(?P<n>\d+)\s+(?P<mean>\d+\.\d\d)?$"
    shown = {
        m["title"]: (int(m["n"]), m["mean"] and float(m["mean"]))
        for m in re.finditer(line, query, re.M)
    }
    lake = tmp_path / "demo" / "lake" / "qode"
    files = sorted((lake / "curated" / "interviews").rglob("*.parquet"))
    columns = ["role", "mapped_role_title", "role_title", "aggregated_score"]
    rows = [r for f in files for r in pq.ParquetFile(f).read(columns).to_pylist()]
    by_role: dict[str, list[dict]] = {}
    for row in rows:
        by_role.setdefault(row["role"], []).append(row)
    expected = {}
    for group in by_role.values():
        first = group[0]
        titles = [(t or "").strip() for t in (first["mapped_role_title"], first["role_title"])]
        scores = [r["aggregated_score"] for r in group if r["aggregated_score"] is not None]
        mean = sum(scores) / len(scores) if scores else None
        expected[next((t for t in titles if t), "(no title)")] = (len(group), mean)
    assert set(shown) == set(expected) and shown
    for title, (count, mean) in shown.items():
        assert count == expected[title][0], title
        want = expected[title][1]
        assert (mean is None) == (want is None), title
        if want is not None:
            assert abs(mean - want) <= 0.005 + 1e-9, title
    published = list((lake / "interviews").rglob("interview.json"))
    assert len(rows) == len(published) > 0
