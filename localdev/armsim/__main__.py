"""Command line: `python -m localdev.armsim [--port N] [--permissions FILE] ...`.

The first line printed (flushed at once) is `ARM simulator listening on http://127.0.0.1:<port>`,
so scripts can start it with port 0 and read the URL.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from localdev.armsim.config import DEFAULT_VCPU_QUOTA, SimConfig
from localdev.armsim.server import SimulatorServer, is_loopback_host


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.armsim",
        description="A local Azure Resource Manager for the azure-mgmt SDKs (loopback only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        help="multiplies every operation's duration (0 = instant)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="fraction of requests that fail transiently"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument(
        "--state", type=Path, default=None, help="JSON file to load at start and keep saved"
    )
    parser.add_argument(
        "--no-throttling", action="store_true", help="turn ARM's request throttling off"
    )
    parser.add_argument(
        "--vcpu-quota",
        type=int,
        default=DEFAULT_VCPU_QUOTA,
        help="regional vCPU quota per subscription",
    )
    parser.add_argument(
        "--permissions",
        type=Path,
        default=None,
        metavar="FILE",
        help="the caller's role (e.g. infra/app/platform-operator-role.json); default: allow all",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python logging level")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    args = _parser().parse_args(argv)
    if not is_loopback_host(args.host):
        print(f"refusing to listen on non-loopback host {args.host!r}", file=sys.stderr)
        return 2
    if args.latency_scale < 0 or not 0 <= args.fault_rate <= 1:
        print("--latency-scale must be >= 0 and --fault-rate within [0, 1]", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = SimConfig(
        latency_scale=args.latency_scale,
        fault_rate=args.fault_rate,
        seed=args.seed,
        throttling=not args.no_throttling,
        vcpu_quota=args.vcpu_quota,
        state_file=args.state,
        permissions_file=args.permissions,
    )
    try:
        server = SimulatorServer(config, host=args.host, port=args.port)
    except ValueError as error:
        print(f"refusing to start: {error}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await server.serve(lambda url: print(f"ARM simulator listening on {url}", flush=True), stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
