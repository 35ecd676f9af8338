"""The spec's `upgrade` block: how an upgrade of the platform's versions goes (issue 17).

LifeTime is always upgraded first (OutSystems: "make sure that LifeTime is the most up-to-date
environment", docs-product `src/setup-infra-platform/upgrade/upgrade-platform.md`); `order` is
the order of the other three after it, each one once. After each environment but the last the
upgrade pauses until it is approved (`POST /api/platforms/{solutionId}/upgrade/approve`) or,
with `soakMinutes`, until that much time has passed since the environment's upgrade ended.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, StrictInt, field_validator

from outsystems.spec.fields import SpecModel

UpgradeEnvironment = Literal["dev", "test", "prod"]
DEFAULT_UPGRADE_ORDER: Final[tuple[UpgradeEnvironment, ...]] = ("dev", "test", "prod")
#: The longest soak: thirty days (a durable timer waits that long without trouble).
MAX_SOAK_MINUTES: Final = 30 * 24 * 60


class UpgradeSpec(SpecModel):
    """The order of the environments after LifeTime, and how long each soaks."""

    order: tuple[str, ...] = DEFAULT_UPGRADE_ORDER
    #: How long after an environment's upgrade the next one starts by itself when nobody
    #: approved it before; absent: only an approval continues the upgrade.
    soak_minutes: StrictInt | None = Field(default=None, ge=0, le=MAX_SOAK_MINUTES)

    @field_validator("order")
    @classmethod
    def _each_environment_once(cls, order: tuple[str, ...]) -> tuple[str, ...]:
        if "life" in order:
            raise ValueError(
                "must not list life: LifeTime is always upgraded first, before the others"
            )
        unknown = [name for name in order if name not in DEFAULT_UPGRADE_ORDER]
        if unknown:
            raise ValueError(f"lists {', '.join(unknown)}: only dev, test and prod may be listed")
        repeated = [name for name in DEFAULT_UPGRADE_ORDER if order.count(name) > 1]
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        missing = [name for name in DEFAULT_UPGRADE_ORDER if name not in order]
        if missing:
            raise ValueError(
                f"must list dev, test and prod, each once (missing: {', '.join(missing)}): "
                "every environment runs the platform's one version"
            )
        return order

    @property
    def soak_seconds(self) -> float | None:
        """The soak in seconds (the upgrade request's `soak_seconds`); None: none."""
        return None if self.soak_minutes is None else float(self.soak_minutes * 60)
