"""``qode-lake validate PATH...``: run the quality gate over interview bodies saved as files.

A PATH is a ``*.json`` file or a folder of them (not recursive). In a folder, a file named
``verdicts.json`` is skipped: the examples folder keeps its expected verdicts there and it is
not an interview body. Files have no requested id (their names are not ids), so QR-LIFE-02
checks only the id's format.

Prints one JSON object per file and line: ``file``, ``interview_id``, ``verdict``,
``failed_rules``, ``warnings``, ``reasons``. Exit status: 0 when every file is published, 1 when
any is quarantined, 2 on a usage error (a missing path, no files).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

    batch = validate_batch(
        [FetchedInterview(requested_id=None, raw=f.read_bytes(), source=f.name) for f in files]
    )
    for path, verdict in zip(files, batch.interviews, strict=True):
        line: dict[str, Any] = {"file": str(path), **verdict.to_dict()}
        print(json.dumps(line, ensure_ascii=False))
    if args.report:
        from airflow_provider_qode.quality.report import write_reports

        written = write_reports(batch, args.report)
        print(
            f"reports: {', '.join(str(p) for p in written.values())}",
            file=sys.stderr,
        )
    return EXIT_QUARANTINED if batch.quarantined else EXIT_OK


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="interview .json files or folders")
    parser.add_argument(
        "--report", metavar="DIR", help="also write summary.json, results.json and report.html"
    )
    parser.set_defaults(run=run)


def register(subparsers: Any) -> None:
    """Add ``validate`` to the ``qode-lake`` command line (``airflow_provider_qode.cli``)."""
    parser = subparsers.add_parser(
        "validate",
        help="check interview JSON files against the quality rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)
    register_suites(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m airflow_provider_qode.quality.cli PATH...``)."""
    parser = argparse.ArgumentParser(
        prog="qode-lake validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
