"""Reports of a :class:`BatchVerdict`: a small JSON summary, the full results, a readable HTML page.

The summary is sized for an Airflow XCom (counts and ids, never payloads or reasons); the full
results (verdicts with reasons plus every GX validation result) and the HTML page go to S3 or a
folder. The HTML is rendered here, escaped and self-contained, rather than with GX Data Docs, so
that it needs no GX site configuration and shows the project's rule ids and reasons first.
"""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from airflow_provider_qode.quality.gate import BatchVerdict
from airflow_provider_qode.quality.rules import RULES

#: Quarantined interviews listed in the HTML page; the rest are counted.
HTML_MAX_INTERVIEWS = 2000


def summary(batch: BatchVerdict, top_n: int = 10) -> dict[str, Any]:
    """Counts per verdict and rule, and the ``top_n`` interviews failing the most rules."""
    errors: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    for v in batch.interviews:
        errors.update(v.failed_rules)
        warnings.update(v.warnings)
    worst = sorted(
        (v for v in batch.interviews if v.failed_rules),
        key=lambda v: (-len(v.failed_rules), v.position),
    )[:top_n]
    expectations = [r for suite in batch.gx_results.values() for r in suite.get("results", [])]
    return {
        "interviews": len(batch.interviews),
        "published": len(batch.published),
        "quarantined": len(batch.quarantined),
        "with_warnings": sum(1 for v in batch.interviews if v.warnings),
        "failed_rules": dict(sorted(errors.items())),
        "warnings": dict(sorted(warnings.items())),
        "worst_offenders": [
            {"interview_id": v.interview_id, "failed_rules": list(v.failed_rules)} for v in worst
        ],
        "gx": {
            "tables": dict(batch.table_rows),
            "expectations": len(expectations),
            "failed_expectations": sum(1 for r in expectations if not r.get("success")),
        },
        "seconds": round(batch.seconds, 3),
    }


def full_results(batch: BatchVerdict) -> dict[str, Any]:
    """Everything the gate knows, JSON-serialisable: summary, verdicts, GX results per table."""
    return {
        "summary": summary(batch),
        "rules": {
            r.id: {"severity": r.severity.value, "description": r.description}
            for r in RULES.values()
        },
        "verdicts": [v.to_dict() for v in batch.interviews],
        "gx_results": batch.gx_results,
    }


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.error{color:#a00}.warn{color:#a60}
.ok{color:#070}code{font-size:90%}
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(batch: BatchVerdict, title: str = "Qode interview quality report") -> str:
    """A self-contained HTML page: counts, rules, quarantined interviews, GX expectations."""
    s = summary(batch)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{s['interviews']} interviews: <span class='ok'>{s['published']} published</span>, "
        f"<span class='error'>{s['quarantined']} quarantined</span>, "
        f"{s['with_warnings']} with warnings; checked in {s['seconds']} s.</p>",
        "<h2>Rules</h2>",
    ]
    rule_rows = []
    for rule in RULES.values():
        count = s["failed_rules"].get(rule.id, 0) + s["warnings"].get(rule.id, 0)
        css = "error" if rule.severity.value == "error" else "warn"
        rule_rows.append(
            [
                f"<code>{escape(rule.id)}</code>",
                f"<span class='{css}'>{escape(rule.severity.value)}</span>",
                escape(rule.description),
                str(count),
            ]
        )
    parts.append(_table(["rule", "severity", "description", "interviews"], rule_rows))

    flagged = [v for v in batch.interviews if v.failed_rules or v.warnings]
    parts.append(f"<h2>Interviews with findings ({len(flagged)})</h2>")
    rows = []
    for v in flagged[:HTML_MAX_INTERVIEWS]:
        reasons = "<br>".join(
            f"<code>{escape(r.rule_id)}</code> {escape(r.message)}" for r in v.reasons
        )
        css = "error" if v.failed_rules else "warn"
        rows.append(
            [
                f"<code>{escape(v.interview_id)}</code>",
                f"<span class='{css}'>{escape(v.verdict)}</span>",
                escape(" ".join(v.failed_rules)),
                escape(" ".join(v.warnings)),
                reasons,
            ]
        )
    parts.append(_table(["interview", "verdict", "failed rules", "warnings", "reasons"], rows))
    if len(flagged) > HTML_MAX_INTERVIEWS:
        parts.append(f"<p>... and {len(flagged) - HTML_MAX_INTERVIEWS} more.</p>")

    parts.append("<h2>Great Expectations results</h2>")
    for table, suite in batch.gx_results.items():
        parts.append(f"<h3>{escape(table)} ({batch.table_rows.get(table, 0)} rows)</h3>")
        rows = []
        for r in suite.get("results", []):
            config = r.get("expectation_config", {})
            kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
            result = r.get("result", {})
            sample = result.get("partial_unexpected_list") or []
            rows.append(
                [
                    f"<code>{escape(str(config.get('meta', {}).get('rule_id', '')))}</code>",
                    escape(str(config.get("type", ""))),
                    f"<code>{escape(json.dumps(kwargs, default=str))}</code>",
                    "<span class='ok'>pass</span>"
                    if r.get("success")
                    else "<span class='error'>fail</span>",
                    escape(str(result.get("unexpected_count", ""))),
                    escape(json.dumps(sample[:5], default=str)),
                ]
            )
        parts.append(
            _table(["rule", "expectation", "arguments", "result", "unexpected", "sample"], rows)
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(batch: BatchVerdict, directory: str | Path) -> dict[str, Path]:
    """Write ``summary.json``, ``results.json`` and ``report.html`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.json",
        "results": out / "results.json",
        "html": out / "report.html",
    }
    paths["summary"].write_text(json.dumps(summary(batch), indent=1), encoding="utf-8")
    paths["results"].write_text(json.dumps(full_results(batch), default=str), encoding="utf-8")
    paths["html"].write_text(render_html(batch), encoding="utf-8")
    return paths


def json_summary(batch: BatchVerdict, top_n: int = 10) -> bytes:
    """:func:`summary` as UTF-8 JSON bytes (small: counts and ids only)."""
    return json.dumps(summary(batch, top_n)).encode()


def json_report(batch: BatchVerdict) -> bytes:
    """:func:`full_results` as UTF-8 JSON bytes: the report to keep in S3 beside the run."""
    return json.dumps(full_results(batch), default=str).encode()


def html_report(batch: BatchVerdict) -> bytes:
    """:func:`render_html` as UTF-8 bytes, ready to store."""
    return render_html(batch).encode()
