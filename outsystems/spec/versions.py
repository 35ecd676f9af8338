"""The OutSystems versions a platform installs and the VM images its servers boot from.

Images are pinned: a server added months later (a scale-out) must boot the same build as those
it joins, and an OutSystems base image newer than the requested version would carry a newer
Platform Server, which the setup refuses to downgrade.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import AfterValidator, StrictStr

from outsystems.spec.fields import Path

if TYPE_CHECKING:
    from outsystems.spec.model import PlatformSpec

DEFAULT_PLATFORM_VERSION: Final = "11.32.0"
DEFAULT_LIFETIME_VERSION: Final = "11.25.2"

Image = Literal["windows-server", "outsystems-base"]

#: The Windows Server image build a new platform gets when its spec pins none: a published build
#: of MicrosoftWindowsServer:WindowsServer:2022-datacenter (20348.2762, October 2024). Pinned, so
#: that a scale-out months later installs on the same build the controller has.
DEFAULT_WINDOWS_SERVER_IMAGE_VERSION: Final = "20348.2762.241006"
#: OutSystems' base image version (publisher `outsystems`, offer `os11-vm-baseimage`) that carries
#: each Platform Server (`platformserver` SKU) and LifeTime (`lifetime` SKU) version, from
#: OutSystems/AzureARMTemplates `environmentAzSQL.json` (`PSImage`/`LTImage`, commit 71b88ea,
#: "Update PS,LT & Base Image to 2.28.0"). A base image newer than the requested version would
#: carry a newer Platform Server, which the setup refuses to downgrade.
OUTSYSTEMS_BASE_IMAGE_VERSIONS: Final[Mapping[tuple[str, str], str]] = {
    ("platformserver", "11.32.0"): "2.28.0",
    ("lifetime", "11.25.2"): "2.28.0",
}

_VERSION_RE = re.compile(r"11\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
# Azure image versions are Major.Minor.Build (each a number); `latest` floats, so it is refused.
_IMAGE_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


def version_key(version: str) -> tuple[int, ...]:
    """A dotted version's parts as numbers, for ordering (`11.32.0.7` -> (11, 32, 0, 7))."""
    return tuple(int(part) for part in version.split("."))


def compare_versions(old: str, new: str) -> int:
    """-1 when `new` is lower than `old`, 0 when equal, 1 when higher.

    Only the parts both give are compared: a three-part version (`11.32.0`) is met by any build
    of it (the setup script's rule, `docs/upgrades.md`), so `11.32.0` and `11.32.0.7` are equal.
    """
    a, b = version_key(old), version_key(new)
    width = min(len(a), len(b))
    a, b = a[:width], b[:width]
    return (a < b) - (a > b)


def _check_version(value: str) -> str:
    if not _VERSION_RE.fullmatch(value):
        raise ValueError("must be an OutSystems 11 version 11.x.y, e.g. '11.32.0'")
    return value


def _check_image_version(value: str) -> str:
    if value.lower() == "latest":
        raise ValueError(
            "must be a pinned image version such as '20348.2762.241006', not 'latest': a "
            "floating image gives servers added later another build than the ones they join"
        )
    if not _IMAGE_VERSION_RE.fullmatch(value):
        raise ValueError("must be an Azure image version Major.Minor.Build, e.g. '2.28.0'")
    return value


Version = Annotated[StrictStr, AfterValidator(_check_version)]
ImageVersion = Annotated[StrictStr, AfterValidator(_check_image_version)]


def image_problems(spec: PlatformSpec) -> Iterator[tuple[Path, str]]:
    """An OutSystems base image needs a known image for each version, or a pinned one."""
    if spec.image != "outsystems-base" or spec.image_version is not None:
        return
    for sku, version, field in (
        ("platformserver", spec.platform_version, "platformVersion"),
        ("lifetime", spec.lifetime_version, "lifetimeVersion"),
    ):
        if (sku, version) not in OUTSYSTEMS_BASE_IMAGE_VERSIONS:
            known = sorted(v for s, v in OUTSYSTEMS_BASE_IMAGE_VERSIONS if s == sku)
            yield (
                ("imageVersion",),
                f"no OutSystems base image is known for {field} {version} (known: "
                f"{', '.join(known)}); give imageVersion, the base image version that "
                "carries it, or use image 'windows-server'",
            )


def image_version_of(spec: PlatformSpec, sku: str) -> str:
    """The pinned image version of a server (`platformserver` or `lifetime` SKU)."""
    if spec.image_version is not None:
        return spec.image_version
    if spec.image == "windows-server":
        return DEFAULT_WINDOWS_SERVER_IMAGE_VERSION
    version = spec.lifetime_version if sku == "lifetime" else spec.platform_version
    return OUTSYSTEMS_BASE_IMAGE_VERSIONS[(sku, version)]
