"""``qode-lake``: the provider's command line. Each subcommand lives beside the code it drives."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_qode import __version__

DESCRIPTION = """\
The Qode Airflow provider's command line: check saved interview bodies against the
quality rules (validate), run the local Qode stand-in server (sandbox), or rebuild the
curated Parquet tables from the raw lake (curate).
Run `qode-lake COMMAND --help` for a command's options."""

_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def plain_text(doc: str | None) -> str:
    """A docstring as ``--help`` text: reST roles and double backquotes dropped."""
    return _ROLE.sub(r"\1", doc or "").replace("``", "")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default" in text or action.default is argparse.SUPPRESS:
            return text
        if action.default is False and action.nargs == 0:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qode-lake", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Imported here so ``qode-lake --help`` stays cheap and each command pays only for itself.
    from airflow_provider_qode.quality import cli as quality_cli
    from airflow_provider_qode.sandbox import cli as sandbox_cli

    sandbox_cli.register(sub)
    quality_cli.register(sub)
    register_curate(sub)
    return parser


# --- qode-lake curate --------------------------------------------------------------------------
# Here rather than beside the curator: importing ``airflow_provider_qode.lake`` imports Airflow
# (seconds), which ``qode-lake --help`` and the other commands must not pay for.

CURATE_DESCRIPTION = """\
Rebuild the curated Parquet tables (curated/<table>/dt=D/) from the raw partitions.

For backfills and after a schema change: each partition named (every partition with raw or
curated files when none is) is rebuilt from its raw partition, written only where its bytes
change, and removed where its raw partition is empty. Prints one line per partition and a
totals line. Credentials: the Airflow AWS connection given by --aws-conn-id, else boto3's own
chain (environment, profile, instance role); --endpoint-url for an S3-compatible store.
Exit status: 0 when every partition was rebuilt, 1 when any failed (the others still are),
2 on a usage error."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _curator(args: argparse.Namespace) -> Any:
    from airflow_provider_qode.lake.curated.curator import Curator

    sse = {"encryption": args.encryption, "kms_key_id": args.kms_key_id}
    if args.aws_conn_id and not args.endpoint_url:
        return Curator.from_conn_id(args.aws_conn_id, args.bucket, args.prefix, **sse)
    if args.aws_conn_id:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        session = S3Hook(aws_conn_id=args.aws_conn_id).get_session()
        client = session.client("s3", endpoint_url=args.endpoint_url)
    else:
        import boto3

        client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    return Curator.from_client(client, args.bucket, args.prefix, **sse)


def run_curate(args: argparse.Namespace) -> int:
    """The ``curate`` subcommand; returns the exit status."""
    from airflow_provider_qode.lake.curated.curator import CurateError
    from airflow_provider_qode.lake.curated.schemas import TABLES
    from airflow_provider_qode.lake.layout import check_dt

    try:
        for dt in args.dt or ():
            check_dt(dt)
        curator = _curator(args)
    except ValueError as exc:
        print(f"qode-lake curate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    dts = args.dt or curator.all_dts()
    code = EXIT_OK
    try:
        summary = curator.rebuild_many(dts)
    except CurateError as exc:
        summary = exc.summary  # type: ignore[attr-defined]
        code = EXIT_FAILED
    for part in summary.partitions:
        rows = " ".join(f"{t}={part.rows[t]}" for t in TABLES)
        state = "changed" if part.changed else "unchanged"
        print(
            f"dt={part.dt} {state} {rows} written={len(part.written)} deleted={len(part.deleted)}"
        )
    for dt, why in sorted(summary.failed.items()):
        print(f"dt={dt} FAILED {why}")
    totals = " ".join(f"{t}={n}" for t, n in summary.rows.items())
    print(
        f"total: {len(summary.partitions)} partitions, {len(summary.changed)} changed, "
        f"{len(summary.failed)} failed; rows {totals}; "
        f"tables under s3://{curator.bucket}/{curator.layout.prefix}curated/"
    )
    return code


def register_curate(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``curate`` to the ``qode-lake`` command line."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "curate",
        help="rebuild the curated Parquet tables from the raw partitions",
        description=CURATE_DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--bucket", required=True, help="the lake's bucket")
    parser.add_argument("--prefix", default="", help="the lake's prefix in the bucket")
    parser.add_argument(
        "--dt",
        action="append",
        metavar="YYYY-MM-DD",
        help="a partition to rebuild; repeat for more (default: every partition)",
    )
    parser.add_argument(
        "--aws-conn-id", help="Airflow AWS connection to use (default: boto3's own credentials)"
    )
    parser.add_argument("--endpoint-url", help="S3 endpoint, for an S3-compatible store")
    parser.add_argument("--region", help="AWS region, with boto3's own credentials")
    parser.add_argument(
        "--encryption", help="server-side encryption of each file: AES256 or aws:kms"
    )
    parser.add_argument("--kms-key-id", help="KMS key id, with --encryption aws:kms")
    parser.set_defaults(run=run_curate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
