"""Cold start: the cost of importing and indexing `function_app.py` in a fresh interpreter.

What the Python worker does at a cold start is import the app and index it
(`app.get_functions()`). Three variants run in fresh interpreters, interleaved, several times:

- `floor`: `azure.functions` and `azure.durable_functions` alone (the least any app pays);
- `app`: import `function_app` and index it (what we ship: SDKs and the domain load lazily);
- `eager`: every Azure SDK client (azure.mgmt.*, azure.identity, azure.storage.queue) and every
  module of the domain and the adapters imported first, then the same import and indexing.

Prints medians of wall time and peak RSS, and the ratio eager ÷ app (target ≥ 3.5, issue 16;
app < 0.5 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from bench.common import ROOT, format_table, median, verdict

#: The clients of every Azure SDK in requirements.txt, as an eager app would import them.
EAGER_SDK_IMPORTS = (
    "from azure.mgmt.resource.resources import ResourceManagementClient",
    "from azure.mgmt.network import NetworkManagementClient",
    "from azure.mgmt.compute import ComputeManagementClient",
    "from azure.mgmt.sql import SqlManagementClient",
    "from azure.mgmt.storage import StorageManagementClient",
    "from azure.mgmt.monitor import MonitorManagementClient",
    "from azure.identity import DefaultAzureCredential",
    "from azure.storage.queue import QueueClient",
)
#: The app's own packages whose every module an eager app would import at start.
EAGER_PACKAGES = ("outsystems", "arm", "services", "activities", "orchestrators", "triggers")

# Runs in the fresh interpreter: times the variant's imports, reports JSON on stdout.
_PROBE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
started = time.perf_counter()
variant = {variant!r}
if variant == "eager":
    {eager}
    import importlib, pkgutil
    for package in {packages!r}:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
if variant == "floor":
    import azure.functions, azure.durable_functions
else:
    import function_app
    functions = function_app.app.get_functions()
    assert functions, "the app indexed no function"
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": elapsed, "peak_rss_mib": peak_kib / 1024,
                  "modules": len(sys.modules)}}))
"""

VARIANTS = ("floor", "app", "eager")


@dataclass(frozen=True)
class Sample:
    """One fresh interpreter's figures."""

    seconds: float
    peak_rss_mib: float
    modules: int


def probe(variant: str) -> Sample:
    """Run one variant in a fresh interpreter (no bytecode writing, same cwd as the worker)."""
    code = _PROBE.format(
        root=str(ROOT),
        variant=variant,
        eager="\n    ".join(EAGER_SDK_IMPORTS),
        packages=EAGER_PACKAGES,
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} probe failed:\n{completed.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return Sample(float(data["seconds"]), float(data["peak_rss_mib"]), int(data["modules"]))


@dataclass(frozen=True)
class ColdStartResult:
    """Samples per variant."""

    repeats: int
    samples: dict[str, list[Sample]]

    def median_seconds(self, variant: str) -> float:
        return median([s.seconds for s in self.samples[variant]])

    def median_rss(self, variant: str) -> float:
        return median([s.peak_rss_mib for s in self.samples[variant]])

    @property
    def speedup(self) -> float:
        return self.median_seconds("eager") / self.median_seconds("app")

    def to_json(self) -> dict[str, Any]:
        return {
            "repeats": self.repeats,
            "median_seconds": {v: self.median_seconds(v) for v in VARIANTS},
            "median_peak_rss_mib": {v: self.median_rss(v) for v in VARIANTS},
            "eager_over_app": self.speedup,
        }


def run(*, repeats: int = 7) -> ColdStartResult:
    """Each variant `repeats` times, interleaved so that machine noise hits all alike.

    One untimed round first warms the OS file cache (and Python's bytecode cache).
    """
    for variant in VARIANTS:
        probe(variant)
    samples: dict[str, list[Sample]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            samples[variant].append(probe(variant))
    return ColdStartResult(repeats, samples)


def report(result: ColdStartResult) -> str:
    """The medians and ratios as text."""
    rows = [
        (
            variant,
            result.median_seconds(variant),
            min(s.seconds for s in result.samples[variant]),
            result.median_rss(variant),
            result.samples[variant][0].modules,
        )
        for variant in VARIANTS
    ]
    app = result.median_seconds("app")
    floor = result.median_seconds("floor")
    return "\n".join(
        [
            f"cold start: import + index function_app.py in a fresh interpreter, "
            f"{result.repeats} runs each (medians)",
            format_table(rows, ("variant", "median s", "min s", "peak RSS MiB", "modules")),
            f"app over the floor: +{app - floor:.3f} s, "
            f"+{result.median_rss('app') - result.median_rss('floor'):.1f} MiB",
            f"eager / app = {result.speedup:.2f} (target >= 3.5: "
            f"{verdict(result.speedup, 3.5, at_most=False)}); app = {app:.3f} s "
            f"(target < 0.5: {verdict(app, 0.5, at_most=True)})",
        ]
    )
