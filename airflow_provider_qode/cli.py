"""``qode-lake``: the provider's command line. Each subcommand lives beside the code it drives."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qode-lake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Imported here so ``qode-lake --help`` stays cheap and each command pays only for itself.
    from airflow_provider_qode.quality import cli as quality_cli
    from airflow_provider_qode.sandbox import cli as sandbox_cli

    sandbox_cli.register(sub)
    quality_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
