"""``python -m localdev.host``: run a function app like ``func start``, without Core Tools.

The first line printed says where the host listens (with ``--port 0`` the port actually bound),
then the functions and their routes are listed, as ``func start`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from localdev.host.app_loader import AppLoadError
from localdev.host.host import LocalHost
from localdev.host.keys import KEYS_SETTING, MASTER_KEY_NAME
from localdev.host.settings import FUNCTION_KEY_SETTING, SettingsError, build_config
from localdev.host.timers import ScheduleError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.host",
        description="Run an Azure Functions (Python v2 model) app with Durable Functions locally.",
    )
    parser.add_argument("--app-dir", type=Path, default=Path.cwd(), help="app folder (cwd)")
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help="local.settings.json (default: the app folder's, if present)",
    )
    parser.add_argument("--port", type=int, default=7071, help="port; 0 picks a free one")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; any but a loopback address needs --require-keys",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start from an empty task hub (deletes the file)"
    )
    parser.add_argument("--hub-file", default=None, help="task hub SQLite file or :memory:")
    parser.add_argument(
        "--require-keys",
        action="store_true",
        help=(
            f"enforce auth levels as Azure does: the master key is {FUNCTION_KEY_SETTING}, "
            f"host, system and function keys come from {KEYS_SETTING} (see the README)"
        ),
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _remove_hub(path: str) -> None:
    if path == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(path + suffix)
        if candidate.exists():
            candidate.unlink()


async def _serve(host: LocalHost) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await host.start()
    try:
        config = host.config
        print(f"Local Functions host listening on {host.base_url}", flush=True)
        print(f"Task hub '{config.hub_name}' in {config.hub_path}", flush=True)
        if config.require_keys and config.function_key_generated:
            # The issue asks for the generated key to be shown once, on the console only.
            print(
                f"Master key ({MASTER_KEY_NAME}, {FUNCTION_KEY_SETTING}): {config.function_key}",
                flush=True,
            )
        print("\nFunctions:\n", flush=True)
        for line in host.describe_functions():
            print(f"        {line}\n", flush=True)
        await stop.wait()
    finally:
        await host.stop()


class _UtcFormatter(logging.Formatter):
    """``[2024-05-01T10:11:12.123Z] message``, the way ``func start`` stamps its lines."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.require_keys and not _is_loopback(args.host):
        # Without keys every function, the admin API and the durable webhooks are open to
        # whoever can reach the address.
        print(
            f"error: --host {args.host or '(all interfaces)'} is not a loopback address: "
            "listening there requires --require-keys",
            file=sys.stderr,
        )
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("[%(asctime)s] %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    app_dir = args.app_dir.resolve()
    try:
        config = build_config(
            app_dir,
            args.settings,
            hub_path=args.hub_file,
            require_keys=args.require_keys,
        )
        if args.fresh:
            _remove_hub(config.hub_path)
        if str(app_dir) not in sys.path:
            sys.path.insert(0, str(app_dir))
        os.chdir(app_dir)
        asyncio.run(_serve(LocalHost(config, host=args.host, port=args.port)))
    except (SettingsError, AppLoadError, ScheduleError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
