"""Reports of a :class:`BatchVerdict`: a small JSON summary, the full results, a readable HTML page.

The summary is sized for an Airflow XCom (counts and ids, never payloads or reasons); the full
results (verdicts with reasons plus every GX validation result) and the HTML page go to S3 or a
folder. The HTML is rendered here, escaped and self-contained, rather than with GX Data Docs, so
that it needs no GX site configuration and shows the project's rule ids and reasons first.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_qode.quality.rules import RULES

if TYPE_CHECKING:  # the gate pulls in pandas; rendering a finished batch does not need it
    from airflow_provider_qode.lake.writer import LakeWriter
    from airflow_provider_qode.quality.gate import BatchVerdict, InterviewVerdict

#: Interviews listed in the HTML page (those with findings first); the rest are counted.
HTML_MAX_INTERVIEWS = 2000


def lake_details(writer: LakeWriter) -> dict[str, Any]:
    """What a chunk's report names beside the verdicts: its run and where each id landed.

    ``context`` is the DAG, run, chunk, lake and run date; ``locations`` maps each interview id
    to the key of its ``interview.json`` (``interviews/dt=…/role=…/`` or ``quarantine/…``).
    """
    return {
        "context": {
            "DAG": writer.dag_id,
            "run": writer.run_id,
            "chunk": writer.chunk,
            "lake": f"s3://{writer.bucket}/{writer.layout.prefix}",
            "run date": writer.run_date,
        },
        "locations": {
            e.interview_id: e.key
            for e in writer.entries
            if e.kind == "interview" and e.interview_id is not None
        },
    }


#: Sampled values kept per expectation when sub-batch results are merged (GX's own default).
PARTIAL_UNEXPECTED = 20


def merge_batches(merged: BatchVerdict | None, part: BatchVerdict) -> BatchVerdict:
    """Fold the verdicts of one sub-batch into those of the chunk so far (``merged``, or None).

    A chunk is checked in sub-batches to keep its memory flat, yet it keeps one report: the
    verdicts are appended with their positions shifted to the chunk's; per table, each
    expectation's counts are summed, its failing row indices shifted by the rows before, its
    samples capped as GX caps them, and the suite statistics recomputed. Every rule is about
    one interview (the tables carry its position), so the verdicts are those one run over the
    whole chunk would give.
    """
    if merged is None:  # the first part becomes the chunk's: it is not used on its own after
        return dataclasses.replace(
            part,
            interviews=list(part.interviews),
            gx_results=dict(part.gx_results),
            table_rows=dict(part.table_rows),
        )
    offset = len(merged.interviews)
    merged.interviews.extend(
        dataclasses.replace(v, position=v.position + offset) for v in part.interviews
    )
    for table, suite in part.gx_results.items():
        rows_before = merged.table_rows.get(table, 0)
        if table not in merged.gx_results:
            merged.gx_results[table] = _shifted_suite(suite, rows_before)
        else:
            _merge_suite(merged.gx_results[table], suite, rows_before)
    for table, rows in part.table_rows.items():
        merged.table_rows[table] = merged.table_rows.get(table, 0) + rows
    merged.seconds += part.seconds
    return merged


def _shifted_suite(suite: dict[str, Any], rows_before: int) -> dict[str, Any]:
    shifted = copy.deepcopy(suite)
    for result in shifted.get("results", []):
        found = result.get("result") or {}
        for name in ("unexpected_index_list", "partial_unexpected_index_list"):
            if isinstance(found.get(name), list):
                found[name] = [_shift(i, rows_before) for i in found[name]]
    return shifted


def _shift(index: Any, rows_before: int) -> Any:
    return index + rows_before if isinstance(index, int) else index


def _merge_suite(into: dict[str, Any], part: dict[str, Any], rows_before: int) -> None:
    """Add one sub-batch's suite result of a table to the chunk's (same suite, same order)."""
    results, more = into.setdefault("results", []), part.get("results", [])
    key = lambda r: (r.get("expectation_config") or {}).get("meta", {}).get("check_id")  # noqa: E731
    if [key(r) for r in results] != [key(r) for r in more]:
        raise ValueError("cannot merge the results of two different suites")
    for mine, theirs in zip(results, more, strict=True):
        mine["success"] = bool(mine.get("success")) and bool(theirs.get("success"))
        if theirs.get("exception_info", {}).get("raised_exception"):
            mine["exception_info"] = theirs["exception_info"]
        a, b = mine.setdefault("result", {}), theirs.get("result") or {}
        for name in ("element_count", "unexpected_count", "missing_count"):
            if name in a or name in b:
                a[name] = (a.get(name) or 0) + (b.get(name) or 0)
        for name in ("unexpected_list", "unexpected_index_list"):
            if isinstance(b.get(name), list):
                shift = name == "unexpected_index_list"
                a[name] = list(a.get(name) or []) + [
                    _shift(i, rows_before) if shift else i for i in b[name]
                ]
        for name in ("partial_unexpected_list", "partial_unexpected_index_list"):
            if isinstance(b.get(name), list):
                shift = name == "partial_unexpected_index_list"
                extra = [_shift(i, rows_before) if shift else i for i in b[name]]
                a[name] = (list(a.get(name) or []) + extra)[:PARTIAL_UNEXPECTED]
        if isinstance(b.get("partial_unexpected_counts"), list):
            a["partial_unexpected_counts"] = _merge_counts(
                a.get("partial_unexpected_counts") or [], b["partial_unexpected_counts"]
            )
        _percentages(a)
    passed = sum(1 for r in results if r.get("success"))
    into["success"] = bool(into.get("success")) and bool(part.get("success"))
    into["statistics"] = {
        "evaluated_expectations": len(results),
        "successful_expectations": passed,
        "unsuccessful_expectations": len(results) - passed,
        "success_percent": 100.0 * passed / len(results) if results else None,
    }


def _merge_counts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    counts: dict[str, tuple[Any, int]] = {}
    for item in (*a, *b):
        name = json.dumps(item.get("value"), sort_keys=True, default=str)
        value, count = counts.get(name, (item.get("value"), 0))
        counts[name] = (value, count + int(item.get("count") or 0))
    ordered = sorted(counts.values(), key=lambda vc: -vc[1])[:PARTIAL_UNEXPECTED]
    return [{"value": value, "count": count} for value, count in ordered]


def _percentages(result: dict[str, Any]) -> None:
    """GX's percentages, recomputed from the summed counts."""
    if "element_count" not in result:
        return
    total, missing = result["element_count"], result.get("missing_count") or 0
    unexpected, present = result.get("unexpected_count") or 0, total - missing
    if "missing_percent" in result:
        result["missing_percent"] = 100.0 * missing / total if total else None
    if "unexpected_percent_total" in result:
        result["unexpected_percent_total"] = 100.0 * unexpected / total if total else None
    for name in ("unexpected_percent", "unexpected_percent_nonmissing"):
        if name in result:
            result[name] = 100.0 * unexpected / present if present else None


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


def full_results(
    batch: BatchVerdict,
    context: Mapping[str, str] | None = None,
    locations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the gate knows, JSON-serialisable: summary, verdicts, GX results per table.

    ``context`` and ``locations`` (see :func:`lake_details`) are added when given.
    """
    extra: dict[str, Any] = {}
    if context is not None:
        extra["context"] = dict(context)
    if locations is not None:
        extra["locations"] = {
            _id(v): locations[_id(v)] for v in batch.interviews if _id(v) in locations
        }
    return {
        **extra,
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
.ok{color:#070}code{font-size:90%}.rule{white-space:nowrap}
dl.run{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dl.run dt{font-weight:bold}
dl.run dd{margin:0}summary{cursor:pointer;font-size:1.3em;font-weight:bold;margin:1em 0}
"""


def _id(v: InterviewVerdict) -> str:
    return v.requested_id or v.interview_id


def _rule(rule_id: str) -> str:
    """A rule id that never wraps at its hyphens."""
    return f"<code class='rule'>{escape(rule_id)}</code>"


def _rules(rule_ids: tuple[str, ...] | list[str]) -> str:
    return " ".join(_rule(r) for r in rule_ids)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(
    batch: BatchVerdict,
    title: str = "Qode interview quality report",
    *,
    context: Mapping[str, str] | None = None,
    locations: Mapping[str, str] | None = None,
) -> str:
    """A self-contained HTML page: run, counts, rules, interviews, GX expectations (collapsed).

    ``context`` (label -> value, e.g. DAG, run, chunk, lake, run date) heads the page;
    ``locations`` (id -> lake key) adds each interview's key. See :func:`lake_details`.
    """
    s = summary(batch)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if context:
        items = "".join(
            f"<dt>{escape(label)}</dt><dd><code>{escape(str(value))}</code></dd>"
            for label, value in context.items()
        )
        parts.append(f"<dl class='run'>{items}</dl>")
    parts += [
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
                _rule(rule.id),
                f"<span class='{css}'>{escape(rule.severity.value)}</span>",
                escape(rule.description),
                str(count),
            ]
        )
    parts.append(_table(["rule", "severity", "description", "interviews"], rule_rows))

    # Findings first (errors, then warnings), then clean ones, each group in batch order.
    listed = sorted(batch.interviews, key=lambda v: (not v.failed_rules, not v.warnings))
    flagged = sum(1 for v in listed if v.failed_rules or v.warnings)
    parts.append(f"<h2>Interviews ({len(listed)}, {flagged} with findings)</h2>")
    headers = ["interview", "verdict", "failed rules", "warnings", "reasons"]
    if locations is not None:
        headers.insert(2, "lake key")
    rows = []
    for v in listed[:HTML_MAX_INTERVIEWS]:
        reasons = "<br>".join(f"{_rule(r.rule_id)} {escape(r.message)}" for r in v.reasons)
        css = "error" if v.failed_rules else "warn" if v.warnings else "ok"
        row = [
            f"<code>{escape(_id(v))}</code>",
            f"<span class='{css}'>{escape(v.verdict)}</span>",
            _rules(v.failed_rules),
            _rules(v.warnings),
            reasons,
        ]
        if locations is not None:
            row.insert(2, f"<code>{escape(locations.get(_id(v), '(not landed)'))}</code>")
        rows.append(row)
    parts.append(_table(headers, rows))
    if len(listed) > HTML_MAX_INTERVIEWS:
        parts.append(f"<p>... and {len(listed) - HTML_MAX_INTERVIEWS} more.</p>")

    gx = s["gx"]
    parts.append(
        f"<details><summary>Great Expectations results ({gx['expectations']} expectations, "
        f"{gx['failed_expectations']} failed)</summary>"
    )
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
                    _rule(str(config.get("meta", {}).get("rule_id", ""))),
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
    parts.append("</details></body></html>")
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


def json_report(
    batch: BatchVerdict,
    context: Mapping[str, str] | None = None,
    locations: Mapping[str, str] | None = None,
) -> bytes:
    """:func:`full_results` as UTF-8 JSON bytes: the report to keep in S3 beside the run."""
    return json.dumps(full_results(batch, context, locations), default=str).encode()


def html_report(
    batch: BatchVerdict,
    context: Mapping[str, str] | None = None,
    locations: Mapping[str, str] | None = None,
) -> bytes:
    """:func:`render_html` as UTF-8 bytes, ready to store."""
    return render_html(batch, context=context, locations=locations).encode()
