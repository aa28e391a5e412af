"""``qode-lake sandbox``: run the local Qode stand-in server until SIGINT/SIGTERM.

It prints its base URL (one line, ``http://127.0.0.1:PORT/api/v1``) as soon as it listens, so a
parent process started with ``--port 0`` can read the real port. Also runnable on its own as
``python -m airflow_provider_qode.sandbox.cli`` (no Airflow import, starts in well under a second).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any


def _retry_after(value: str) -> float | str | None:
    """Seconds, ``+N`` (an HTTP-date N seconds ahead), an HTTP-date, or ``none``."""
    if value.lower() == "none":
        return None
    if value.startswith("+"):
        return value
    try:
        return float(value)
    except ValueError:
        return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's flags, shared by ``qode-lake sandbox`` and ``python -m ...sandbox.cli``."""
    from airflow_provider_qode.sandbox.generator import DEFAULT_START_DATE

    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on")
    net.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    net.add_argument("--token", default="sandbox-token", help="the bearer token to accept")
    net.add_argument(
        "--replay-dir",
        metavar="DIR",
        help="serve DIR/<id>.json byte for byte (default: generate a dataset from the flags below)",
    )
    net.add_argument(
        "--report-after-gets",
        type=int,
        default=None,
        metavar="N",
        help="created interviews turn REPORT_GENERATED after N GETs "
        "(default: never, they stay SCHEDULED)",
    )
    net.add_argument("--no-asset-auth", action="store_true", help="serve assets without a token")
    net.add_argument("--prewarm", action="store_true", help="render every body before listening")

    data = parser.add_argument_group("dataset")
    data.add_argument("--seed", type=int, default=0, help="seed of the generated dataset")
    data.add_argument("--count", type=int, default=100, help="interviews to generate")
    data.add_argument(
        "--broken-share", type=float, default=0.0, help="share (0-1) breaking one quality rule"
    )
    data.add_argument("--questions", type=int, default=5, help="questions per interview")
    data.add_argument("--agents", type=int, default=3, help="assessment agents per question")
    data.add_argument("--criteria", type=int, default=4, help="criteria per agent")
    data.add_argument(
        "--transcript-lines", type=int, default=40, help="transcript lines per interview"
    )
    data.add_argument("--asset-bytes", type=int, default=2048, help="size of each screenshot")
    data.add_argument(
        "--start-date",
        type=date.fromisoformat,
        default=DEFAULT_START_DATE,
        metavar="YYYY-MM-DD",
        help="first day of interview timestamps",
    )
    data.add_argument("--days", type=int, default=3, help="days the timestamps spread over")

    faults = parser.add_argument_group("faults (shares of interview-details requests, 0-1)")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added to every API answer")
    faults.add_argument("--rate-429", type=float, default=0.0, help="share answered 429")
    faults.add_argument(
        "--retry-after",
        type=_retry_after,
        default=1.0,
        help="Retry-After of a 429: seconds, +N (an HTTP-date N s ahead), a date or none",
    )
    faults.add_argument("--rate-5xx", type=float, default=0.0, help="share answered 5xx")
    faults.add_argument("--rate-drop", type=float, default=0.0, help="share of dropped connections")
    faults.add_argument(
        "--rate-slow", type=float, default=0.0, help="share sent slowly, in --slow-chunks pieces"
    )
    faults.add_argument(
        "--rate-malformed", type=float, default=0.0, help="share answered with broken JSON"
    )
    faults.add_argument(
        "--slow-chunks", type=int, default=8, help="pieces a slow answer is cut into"
    )
    faults.add_argument(
        "--slow-delay-ms", type=float, default=50.0, help="pause between a slow answer's pieces"
    )
    faults.add_argument(
        "--fault-seed", type=int, default=None, help="seed of the fault draws (default: --seed)"
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sandbox`` subcommand to ``qode-lake``."""
    from airflow_provider_qode.cli import HelpFormatter, plain_text

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run the local Qode stand-in server",
        description=plain_text(__doc__),
        formatter_class=HelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; 0 on a clean shutdown, 2 on bad arguments."""
    from airflow_provider_qode.sandbox.generator import SandboxDataset
    from airflow_provider_qode.sandbox.server import (
        FaultConfig,
        SandboxApp,
        base_url_of,
        bind_socket,
        make_uvicorn,
    )

    try:
        faults = FaultConfig().updated(
            {
                "latency_ms": args.latency_ms,
                "rate_429": args.rate_429,
                "retry_after": args.retry_after,
                "rate_5xx": args.rate_5xx,
                "rate_drop": args.rate_drop,
                "rate_slow": args.rate_slow,
                "rate_malformed": args.rate_malformed,
                "slow_chunks": args.slow_chunks,
                "slow_delay_ms": args.slow_delay_ms,
                "seed": args.seed if args.fault_seed is None else args.fault_seed,
            }
        )
        dataset = None
        if args.replay_dir is None:
            dataset = SandboxDataset(
                seed=args.seed,
                count=args.count,
                broken_share=args.broken_share,
                questions=args.questions,
                agents=args.agents,
                criteria=args.criteria,
                transcript_lines=args.transcript_lines,
                asset_bytes=args.asset_bytes,
                start_date=args.start_date,
                days=args.days,
            )
            if args.prewarm:
                dataset.prewarm()
        app = SandboxApp(
            dataset,
            args.replay_dir,
            token=args.token,
            faults=faults,
            report_after_gets=args.report_after_gets,
            asset_auth=not args.no_asset_auth,
        )
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    sock = bind_socket(args.host, args.port)
    # The socket already listens: connections made from now on wait in its backlog.
    print(base_url_of(sock), flush=True)
    try:
        make_uvicorn(app).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from airflow_provider_qode.cli import HelpFormatter, plain_text

    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_qode.sandbox.cli",
        description=plain_text(__doc__),
        formatter_class=HelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
