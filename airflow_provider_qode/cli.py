"""``qode-lake``: the provider's command line. Each subcommand lives beside the code it drives."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from airflow_provider_qode import __version__

DESCRIPTION = """\
The Qode Airflow provider's command line: check saved interview bodies against the
quality rules (validate), or run the local Qode stand-in server (sandbox).
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
