"""The production front-end scaling policy as plain, immutable data.

The spec produces it, the topology writes it into the scale set's tags, and the scaler reads it
back from those tags; the decision arithmetic lives in `outsystems.scaling`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outsystems.tags import PLATFORM_TAG_KEYS

WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class ScheduleWindow:
    """Inside the window (local time of `time_zone`) capacity never goes below `min_capacity`.

    `days` are the days on which the window *starts* (names from `WEEKDAYS`); a window whose
    `end` is not after its `start` spans midnight and ends on the following day.
    """

    days: frozenset[str]
    start: time
    end: time
    time_zone: str
    min_capacity: int


@dataclass(frozen=True)
class ScalingPolicy:
    """Bounds, steps, cooldown and schedule floors of one scale set."""

    min_capacity: int
    max_capacity: int
    scale_out_step: int = 1
    scale_in_step: int = 1
    cooldown_minutes: int = 10
    schedules: tuple[ScheduleWindow, ...] = ()


# --- The policy as scale-set tags ------------------------------------------------------------
#
# ARM is the source of truth (no database of our own), so the policy travels in the scale set's
# tags. A tag value holds at most 256 characters, so the compact JSON is prefixed with a header
# (format version, number of chunks, CRC-32 of the payload) and cut into numbered tags
# `osScalingPolicy0`, `osScalingPolicy1`, ... The header lets a reader tell a complete set from a
# partial one or from chunks of two different writes.

POLICY_TAG_PREFIX = "osScalingPolicy"
#: The tag carrying the MAC that makes the policy tags trusted (brief C5; the webhook work
#: computes and checks it).
POLICY_MAC_TAG = "osScalingPolicyMac"
TAG_VALUE_MAX = 256
# ARM allows 50 tags per resource; the policy must leave room for the platform's own tags.
MAX_POLICY_TAGS = 16
_FORMAT_VERSION = 1
_POLICY_TAG_RE = re.compile(re.escape(POLICY_TAG_PREFIX.lower()) + r"(0|[1-9][0-9]*)")
_KEYS = frozenset({"mn", "mx", "so", "si", "cd", "w"})


class PolicyTagError(ValueError):
    """The tags carry a policy that cannot be read (or a policy that cannot be written)."""


def policy_errors(policy: ScalingPolicy) -> list[str]:
    """Every reason why `policy` is not a usable policy (empty when it is)."""
    errors: list[str] = []
    if policy.min_capacity < 0:
        errors.append(f"minCapacity {policy.min_capacity} is negative")
    if policy.max_capacity < policy.min_capacity:
        errors.append(
            f"maxCapacity {policy.max_capacity} is below minCapacity {policy.min_capacity}"
        )
    if policy.scale_out_step < 1:
        errors.append(f"scaleOutStep {policy.scale_out_step} is below 1")
    if policy.scale_in_step < 1:
        errors.append(f"scaleInStep {policy.scale_in_step} is below 1")
    if policy.cooldown_minutes < 0:
        errors.append(f"cooldownMinutes {policy.cooldown_minutes} is negative")
    for index, window in enumerate(policy.schedules):
        where = f"schedules[{index}]"
        unknown = sorted(window.days - set(WEEKDAYS))
        if unknown:
            errors.append(f"{where}.days has unknown days {unknown}; use {list(WEEKDAYS)}")
        for name, value in (("start", window.start), ("end", window.end)):
            if value.tzinfo is not None:
                errors.append(f"{where}.{name} must be a local time without a UTC offset")
        if not _is_time_zone(window.time_zone):
            errors.append(f"{where}.timeZone {window.time_zone!r} is not an IANA time zone")
        if window.min_capacity < 0:
            errors.append(f"{where}.minCapacity {window.min_capacity} is negative")
        if window.min_capacity > policy.max_capacity:
            errors.append(
                f"{where}.minCapacity {window.min_capacity} is above maxCapacity "
                f"{policy.max_capacity}"
            )
    return errors


def _is_time_zone(name: str) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def is_policy_tag(name: str) -> bool:
    """Whether a tag name is one of the policy's chunks (case-insensitive, as ARM compares)."""
    return _POLICY_TAG_RE.fullmatch(name.lower()) is not None


def policy_to_tags(policy: ScalingPolicy) -> dict[str, str]:
    """The tags that carry `policy`: `osScalingPolicy0` and, when it is long, further chunks.

    Raises `PolicyTagError` when the policy is invalid (it could not be read back) or too
    large for `MAX_POLICY_TAGS` tags.
    """
    errors = policy_errors(policy)
    if errors:
        raise PolicyTagError("invalid scaling policy: " + "; ".join(errors))
    payload = json.dumps(_to_json(policy), separators=(",", ":"), sort_keys=True)
    crc = f"{zlib.crc32(payload.encode()):08x}"
    # The header holds the chunk count, whose digits change the count: settle on a fixed point.
    count = 1
    while True:
        text = f"{_FORMAT_VERSION};{count};{crc};{payload}"
        chunks = [text[i : i + TAG_VALUE_MAX] for i in range(0, len(text), TAG_VALUE_MAX)]
        if len(chunks) == count:
            break
        count = len(chunks)
    if count > MAX_POLICY_TAGS:
        raise PolicyTagError(
            f"scaling policy needs {count} tags of {TAG_VALUE_MAX} characters; "
            f"at most {MAX_POLICY_TAGS} are allowed (fewer or shorter schedules)"
        )
    return {f"{POLICY_TAG_PREFIX}{i}": chunk for i, chunk in enumerate(chunks)}


def policy_from_tags(tags: Mapping[str, str]) -> ScalingPolicy | None:
    """The policy carried by a scale set's tags; None when they carry none.

    Tag names are compared case-insensitively. Chunks numbered beyond the count written in the
    header are leftovers of an older, longer policy and are ignored. Raises `PolicyTagError`
    when the chunks are missing, mixed, or do not decode to a valid policy.
    """
    chunks: dict[int, str] = {}
    for name, value in tags.items():
        match = _POLICY_TAG_RE.fullmatch(name.lower())
        if match is None:
            continue
        index = int(match.group(1))
        if index in chunks and chunks[index] != value:
            raise PolicyTagError(f"tag {name} appears twice with different values")
        chunks[index] = value
    if not chunks:
        return None
    if 0 not in chunks:
        raise PolicyTagError(f"tag {POLICY_TAG_PREFIX}0 is missing; the policy tags are partial")
    parts = chunks[0].split(";", 3)
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise PolicyTagError(f"tag {POLICY_TAG_PREFIX}0 does not start with a policy header")
    version, count, crc = int(parts[0]), int(parts[1]), parts[2]
    if version != _FORMAT_VERSION:
        raise PolicyTagError(
            f"scaling policy tag format {version} is not supported (this app reads "
            f"{_FORMAT_VERSION})"
        )
    if not 1 <= count <= MAX_POLICY_TAGS:
        raise PolicyTagError(f"scaling policy header announces {count} tags")
    missing = [i for i in range(1, count) if i not in chunks]
    if missing:
        names = ", ".join(f"{POLICY_TAG_PREFIX}{i}" for i in missing)
        raise PolicyTagError(f"scaling policy tags are partial: {names} of {count} missing")
    payload = parts[3] + "".join(chunks[i] for i in range(1, count))
    if f"{zlib.crc32(payload.encode()):08x}" != crc:
        raise PolicyTagError("scaling policy tags do not match their checksum (mixed or edited)")
    try:
        document = json.loads(payload)
    except json.JSONDecodeError as error:
        raise PolicyTagError(f"scaling policy tags are not valid JSON: {error}") from error
    policy = _from_json(document)
    errors = policy_errors(policy)
    if errors:
        raise PolicyTagError("scaling policy tags hold an invalid policy: " + "; ".join(errors))
    return policy


def has_valid_mac(key: bytes, scale_set_id: str, tags: Mapping[str, str]) -> bool:
    """Whether `tags` carry the MAC this app computes for them on this scale set.

    The MAC (`policy_mac`, below) is the trust root of scaling: anyone who may write a scale
    set's tags can copy the owner tags and write any policy, but only the app, which holds
    `PLATFORM_KEY_SEED`, can sign them. The CRC-32 of the policy header stays a format check.
    """
    found = [value for name, value in tags.items() if name.lower() == POLICY_MAC_TAG.lower()]
    if len(found) != 1:
        return False
    expected = policy_mac(key, scale_set_id, tags)
    return hmac.compare_digest(found[0].encode("utf-8"), expected.encode("utf-8"))


def capped(policy: ScalingPolicy, ceiling: int) -> ScalingPolicy:
    """`policy` with every bound at most `ceiling` (the `SCALING_MAX_CAPACITY` setting).

    Even a policy the app signed never takes a scale set above the operator's hard ceiling:
    the maximum, the minimum and the schedule floors are lowered to it.
    """
    if ceiling < 0:
        raise ValueError(f"the capacity ceiling {ceiling} is negative")
    if policy.max_capacity <= ceiling:
        return policy
    return replace(
        policy,
        min_capacity=min(policy.min_capacity, ceiling),
        max_capacity=ceiling,
        schedules=tuple(
            replace(window, min_capacity=min(window.min_capacity, ceiling))
            for window in policy.schedules
        ),
    )


def _to_json(policy: ScalingPolicy) -> dict[str, object]:
    return {
        "mn": policy.min_capacity,
        "mx": policy.max_capacity,
        "so": policy.scale_out_step,
        "si": policy.scale_in_step,
        "cd": policy.cooldown_minutes,
        "w": [
            [
                sum(1 << WEEKDAYS.index(day) for day in window.days),
                _format_time(window.start),
                _format_time(window.end),
                window.time_zone,
                window.min_capacity,
            ]
            for window in policy.schedules
        ],
    }


def _format_time(value: time) -> str:
    if value.second == 0 and value.microsecond == 0:
        return value.isoformat(timespec="minutes")
    return value.isoformat()


def _from_json(document: object) -> ScalingPolicy:
    if not isinstance(document, dict) or set(document) != _KEYS:
        raise PolicyTagError(f"scaling policy tags must hold an object with keys {sorted(_KEYS)}")
    windows = document["w"]
    if not isinstance(windows, list):
        raise PolicyTagError("scaling policy schedules must be a list")
    return ScalingPolicy(
        min_capacity=_integer(document["mn"], "minCapacity"),
        max_capacity=_integer(document["mx"], "maxCapacity"),
        scale_out_step=_integer(document["so"], "scaleOutStep"),
        scale_in_step=_integer(document["si"], "scaleInStep"),
        cooldown_minutes=_integer(document["cd"], "cooldownMinutes"),
        schedules=tuple(_window_from_json(item, index) for index, item in enumerate(windows)),
    )


def _window_from_json(item: object, index: int) -> ScheduleWindow:
    where = f"schedules[{index}]"
    if not isinstance(item, list) or len(item) != 5:
        raise PolicyTagError(f"scaling policy {where} must be a list of 5 items")
    mask, start, end, zone, floor = item
    days = _integer(mask, f"{where}.days")
    if not 0 <= days < 1 << len(WEEKDAYS):
        raise PolicyTagError(f"scaling policy {where}.days mask {days} is out of range")
    if not isinstance(zone, str):
        raise PolicyTagError(f"scaling policy {where}.timeZone must be a string")
    return ScheduleWindow(
        days=frozenset(day for bit, day in enumerate(WEEKDAYS) if days >> bit & 1),
        start=_parse_time(start, f"{where}.start"),
        end=_parse_time(end, f"{where}.end"),
        time_zone=zone,
        min_capacity=_integer(floor, f"{where}.minCapacity"),
    )


def _integer(value: object, what: str) -> int:
    # bool is an int subclass; `true` in the tags is corruption, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise PolicyTagError(f"scaling policy {what} must be an integer, not {value!r}")
    return value


def _parse_time(value: object, what: str) -> time:
    if not isinstance(value, str):
        raise PolicyTagError(f"scaling policy {what} must be a time string, not {value!r}")
    try:
        return time.fromisoformat(value)
    except ValueError as error:
        raise PolicyTagError(f"scaling policy {what} {value!r} is not a time") from error


# --- Trust: only the app can write a valid policy ---------------------------------------------

_MAC_CONTEXT = b"outsystems-azure-ops/scaling-policy/v1"


def scaling_policy_key(seed: str) -> bytes:
    """The key of policy MACs, derived from the `PLATFORM_KEY_SEED` setting."""
    return hmac.new(seed.encode("utf-8"), _MAC_CONTEXT, hashlib.sha256).digest()


#: The ownership tags a MAC covers besides the policy's (names compared in lower case).
_OWNER_TAGS = frozenset(name.lower() for name in PLATFORM_TAG_KEYS)


def policy_mac(key: bytes, scale_set_id: str, tags: Mapping[str, str]) -> str:
    """The MAC of a scale set's ownership and policy tags (hex), bound to its id."""
    covered = sorted(
        (name.lower(), value)
        for name, value in tags.items()
        if name.lower() != POLICY_MAC_TAG.lower()
        and (is_policy_tag(name) or name.lower() in _OWNER_TAGS)
    )
    message = json.dumps([scale_set_id.lower(), covered], separators=(",", ":"))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()
