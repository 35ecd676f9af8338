"""Run the benchmarks: `python -m bench [fanout|alerts|coldstart|fleet|upgrade|all] [--quick]
[--json F]`.

Each benchmark prints its figures and ratios measured side by side in the same run. The exit
status is 0 whatever the numbers are: benchmarks inform, they do not gate.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCHMARKS = ("coldstart", "fanout", "alerts", "fleet", "upgrade")


def _fanout(quick: bool) -> tuple[str, Any]:
    from bench import fanout

    result = fanout.run(latency_scale=0.0025 if quick else 0.005)
    return fanout.report(result), result.to_json()


def _alerts(quick: bool) -> tuple[str, Any]:
    from bench import alert_storm

    result = alert_storm.run(sizes=(100,) if quick else (100, 1000), bursts=6 if quick else 20)
    return alert_storm.report(result), result.to_json()


def _coldstart(quick: bool) -> tuple[str, Any]:
    from bench import cold_start

    result = cold_start.run(repeats=3 if quick else 7)
    return cold_start.report(result), result.to_json()


def _fleet(quick: bool) -> tuple[str, Any]:
    from bench import fleet

    results = fleet.run(sizes=(1, 5) if quick else (1, 5, 20))
    return fleet.report(results), [r.to_json() for r in results]


def _upgrade(quick: bool) -> tuple[str, Any]:
    from bench import upgrade

    results = upgrade.run(sizes=(2,) if quick else (2, 4, 8))
    return upgrade.report(results), [r.to_json() for r in results]


RUNNERS: dict[str, Callable[[bool], tuple[str, Any]]] = {
    "fanout": _fanout,
    "alerts": _alerts,
    "coldstart": _coldstart,
    "fleet": _fleet,
    "upgrade": _upgrade,
}


def cpu_model(cpuinfo: str) -> str:
    """The CPU's model name from the text of `/proc/cpuinfo` (empty when it names none)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return ""


def machine() -> str:
    """The machine the figures come from, with its load average now (other work on it)."""
    import os

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = cpu_model(cpuinfo.read())
    except OSError:
        model = ""
    cpus = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.platform()}, {model or platform.processor() or platform.machine()}, "
        f"{cpus} CPUs, Python {platform.python_version()}, load average {load} (1, 5, 15 min)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "benchmarks",
        nargs="*",
        metavar="NAME",
        help=f"which to run: {', '.join(BENCHMARKS)} or all (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--verbose", action="store_true", help="show the app's and host's logs")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Retried activities and full connection pools under load are part of what is
        # measured, not news: the figures report them.
        for name in ("localdev", "urllib3", "azure", "activities", "arm", "services", "triggers"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        import warnings

        warnings.filterwarnings("ignore", message="Potential duplicate Task completion")

    wanted = args.benchmarks or ["all"]
    unknown = sorted(set(wanted) - {*BENCHMARKS, "all"})
    if unknown:
        parser.error(f"unknown benchmark: {', '.join(unknown)}")
    chosen = list(BENCHMARKS) if "all" in wanted else list(dict.fromkeys(wanted))
    print(f"machine: {machine()}", flush=True)
    figures: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    for name in chosen:
        started = time.monotonic()
        text, data = RUNNERS[name](args.quick)
        elapsed = time.monotonic() - started
        print(f"\n== {name} ({elapsed:.0f} s)\n{text}", flush=True)
        figures[name] = data
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
