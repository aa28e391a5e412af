"""``qode-lake validate PATH...``: run the quality gate over interview bodies saved as files.

A PATH is a ``*.json`` file or a folder of them (not recursive). In a folder, a file named
``verdicts.json`` is skipped: the examples folder keeps its expected verdicts there and it is
not an interview body. Files have no requested id (their names are not ids), so QR-LIFE-02
checks only the id's format.

A file larger than --max-body-bytes is quarantined under QR-PARSE without being read by the
gate, as the landing task does with a body over the connection's max_body_bytes (the default is
the same), so the command and the pipeline reach the same verdict.

Prints one JSON object per file and line on stdout: ``file``, ``interview_id``, ``verdict``,
``failed_rules``, ``warnings``, ``reasons``; then a totals line on stderr. Exit status: 0 when
every file is published, 1 when any is quarantined, 2 on a usage error (a missing path, no
files).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_provider_qode.hooks.connection import EXTRA_FIELDS
from airflow_provider_qode.quality.rules import PARSE_RULE_ID

#: The connection's default body cap: one number for the pipeline and this command.
DEFAULT_MAX_BODY_BYTES: int = EXTRA_FIELDS["max_body_bytes"].default

SKIPPED_NAMES = frozenset({"verdicts.json"})

EXIT_OK, EXIT_QUARANTINED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A path that does not exist or names no interview file."""


def collect_files(paths: Sequence[str]) -> list[Path]:
    """The ``*.json`` files named or contained (sorted per folder) in ``paths``."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.iterdir())
                if p.is_file() and p.name.endswith(".json") and p.name not in SKIPPED_NAMES
            )
        elif path.is_file():
            if not path.name.endswith(".json"):
                raise UsageError(f"{name}: not a .json file")
            files.append(path)
        else:
            raise UsageError(f"{name}: no such file or folder")
    if not files:
        raise UsageError("no .json files to validate")
    return files


def run(args: argparse.Namespace) -> int:
    """The ``validate`` subcommand; returns the exit status."""
    try:
        files = collect_files(args.paths)
    except UsageError as exc:
        print(f"qode-lake validate: {exc}", file=sys.stderr)
        return EXIT_USAGE

    # Airflow's logging writes to stdout, which carries the JSON lines: keep the gate quiet.
    logging.getLogger("airflow_provider_qode.quality").setLevel(logging.WARNING)
    from airflow_provider_qode.quality.gate import FetchedInterview, validate_batch

    limit = args.max_body_bytes
    oversized = {f for f in files if f.stat().st_size > limit}
    gated = [f for f in files if f not in oversized]
    batch = validate_batch(
        [FetchedInterview(requested_id=None, raw=f.read_bytes(), source=f.name) for f in gated]
    )
    verdicts = dict(zip(gated, batch.interviews, strict=True))
    totals: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    for path in files:
        if path in oversized:
            line = _oversized(path, limit)
        else:
            line = {"file": str(path), **verdicts[path].to_dict()}
        totals[line["verdict"]] += 1
        rules.update(line["failed_rules"])
        print(json.dumps(line, ensure_ascii=False))
    over = f" ({len(oversized)} over {limit} bytes)" if oversized else ""
    failed = ", ".join(f"{rule}={n}" for rule, n in sorted(rules.items()))
    print(
        f"{len(files)} file{'' if len(files) == 1 else 's'}: {totals['published']} published, "
        f"{totals['quarantined']} quarantined{over}"
        + (f"; failed rules: {failed}" if failed else ""),
        file=sys.stderr,
    )
    if args.report:
        from airflow_provider_qode.quality.report import write_reports

        written = write_reports(batch, args.report)
        print(
            f"reports: {', '.join(str(p) for p in written.values())}",
            file=sys.stderr,
        )
    return EXIT_QUARANTINED if totals["quarantined"] else EXIT_OK


def _oversized(path: Path, limit: int) -> dict[str, Any]:
    """The verdict line of a file the gate never reads: too big, as in the landing task."""
    message = f"body of {path.stat().st_size} bytes is over the {limit}-byte limit"
    return {
        "file": str(path),
        "interview_id": f"<{path.name}>",
        "verdict": "quarantined",
        "failed_rules": [PARSE_RULE_ID],
        "warnings": [],
        "reasons": [{"rule": PARSE_RULE_ID, "severity": "error", "message": message}],
    }


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="interview .json files or folders")
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="also write summary.json, results.json and report.html (default: no reports)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        metavar="N",
        help="quarantine (QR-PARSE) files larger than N bytes, like the connection extra",
    )
    parser.set_defaults(run=run)


def register(subparsers: Any) -> None:
    """Add ``validate`` to the ``qode-lake`` command line (``airflow_provider_qode.cli``)."""
    from airflow_provider_qode.cli import HelpFormatter, plain_text

    parser = subparsers.add_parser(
        "validate",
        help="check interview JSON files against the quality rules",
        description=plain_text(__doc__),
        formatter_class=HelpFormatter,
    )
    _configure(parser)
    register_suites(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m airflow_provider_qode.quality.cli PATH...``)."""
    from airflow_provider_qode.cli import HelpFormatter, plain_text

    parser = argparse.ArgumentParser(
        prog="qode-lake validate",
        description=plain_text(__doc__),
        formatter_class=HelpFormatter,
    )
    _configure(parser)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


# --- qode-lake suites export DIR ---------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    """The ``suites export`` subcommand: one GX suite JSON file per table, paths on stdout."""
    logging.getLogger("airflow_provider_qode.quality").setLevel(logging.WARNING)
    from airflow_provider_qode.quality.suite import export_suites

    try:
        written = export_suites(args.directory)
    except OSError as exc:
        print(f"qode-lake suites export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    return EXIT_OK


def register_suites(subparsers: Any) -> None:
    """Add ``suites export DIR`` to the ``qode-lake`` command line."""
    suites = subparsers.add_parser(
        "suites", help="the quality gate's Great Expectations suites"
    ).add_subparsers(dest="suites_command", required=True)
    export = suites.add_parser(
        "export",
        help="write the GX suites as JSON (ExpectationSuite.to_json_dict()), one per table",
        description="Write qode_<table>.json for each flattened table into DIRECTORY; load one "
        "with gx.ExpectationSuite(**json.load(f)). See docs/quality.md.",
    )
    export.add_argument("directory", metavar="DIRECTORY", help="created if missing")
    export.set_defaults(run=run_export)


if __name__ == "__main__":
    sys.exit(main())
