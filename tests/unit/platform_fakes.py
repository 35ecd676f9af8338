"""A hand-written fake of `services.ports.PlatformArm` and the settings the platform use cases'
tests run with (`test_services_platforms`, `test_services_upgrade`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from appsettings import AppSettings
from outsystems.errors import FieldError
from outsystems.names import NamingScheme
from outsystems.spec import PlatformSpec
from outsystems.topology import Resource
from services.ports import ArmUnavailableError

SUB = "11111111-2222-3333-4444-555555555555"
SETTINGS = AppSettings.load({"AZURE_SUBSCRIPTION_ID": SUB})


class FakeArm:
    """`services.ports.PlatformArm` from plain data; `unavailable` makes every read fail as
    ARM's transient errors do."""

    def __init__(self) -> None:
        self.naming: NamingScheme | None = None
        self.problems: list[FieldError] = []
        self.groups: dict[str, list[Mapping[str, Any]]] = {}
        self.unavailable = False
        self.asked: list[str] = []

    def _ask(self, what: str) -> None:
        self.asked.append(what)
        if self.unavailable:
            raise ArmUnavailableError("429 SubscriptionRequestsThrottled")

    def deployed_naming(self, spec: PlatformSpec) -> NamingScheme | None:
        self._ask("naming")
        return self.naming

    def preflight_problems(
        self, spec: PlatformSpec, allowed_vnet_ids: Sequence[str]
    ) -> list[FieldError]:
        self._ask("preflight")
        return self.problems

    def read_live(
        self, subscription_id: str, resources: Sequence[Resource]
    ) -> list[Mapping[str, Any] | None]:
        self._ask("live")
        return [None for _ in resources]

    def resource_groups(self, subscription_ids: Sequence[str]) -> list[list[Mapping[str, Any]]]:
        self._ask("groups")
        return [self.groups.get(subscription, []) for subscription in subscription_ids]
