"""The scaling policy's round trip through scale-set tags, and its validation."""

from __future__ import annotations

import dataclasses
import zlib
from datetime import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outsystems.policy import (
    MAX_POLICY_TAGS,
    POLICY_TAG_PREFIX,
    TAG_VALUE_MAX,
    WEEKDAYS,
    PolicyTagError,
    ScalingPolicy,
    ScheduleWindow,
    is_policy_tag,
    policy_errors,
    policy_from_tags,
    policy_to_tags,
)

ZONES = (
    "UTC",
    "Europe/Lisbon",
    "America/New_York",
    "America/Argentina/Buenos_Aires",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
)

LISBON_HOURS = ScheduleWindow(
    days=frozenset({"Mon", "Tue", "Wed", "Thu", "Fri"}),
    start=time(8, 0),
    end=time(19, 0),
    time_zone="Europe/Lisbon",
    min_capacity=4,
)
POLICY = ScalingPolicy(
    min_capacity=2,
    max_capacity=10,
    scale_out_step=2,
    scale_in_step=1,
    cooldown_minutes=10,
    schedules=(LISBON_HOURS,),
)


@st.composite
def windows(draw: st.DrawFn, max_capacity: int) -> ScheduleWindow:
    return ScheduleWindow(
        days=frozenset(draw(st.sets(st.sampled_from(WEEKDAYS)))),
        start=draw(st.times()),
        end=draw(st.times()),
        time_zone=draw(st.sampled_from(ZONES)),
        min_capacity=draw(st.integers(0, max_capacity)),
    )


@st.composite
def policies(draw: st.DrawFn, min_windows: int = 0, max_windows: int = 60) -> ScalingPolicy:
    low = draw(st.integers(0, 1000))
    high = draw(st.integers(low, 2000))
    return ScalingPolicy(
        min_capacity=low,
        max_capacity=high,
        scale_out_step=draw(st.integers(1, 1000)),
        scale_in_step=draw(st.integers(1, 1000)),
        cooldown_minutes=draw(st.integers(0, 10_000)),
        schedules=tuple(draw(st.lists(windows(high), min_size=min_windows, max_size=max_windows))),
    )


@settings(max_examples=150, deadline=None)
@given(policies())
def test_any_policy_survives_the_tags(policy: ScalingPolicy) -> None:
    tags = policy_to_tags(policy)

    assert policy_from_tags(tags) == policy
    assert all(len(value) <= TAG_VALUE_MAX for value in tags.values())
    assert list(tags) == [f"{POLICY_TAG_PREFIX}{i}" for i in range(len(tags))]
    assert len(tags) <= MAX_POLICY_TAGS


@settings(max_examples=50, deadline=None)
@given(policies(min_windows=15, max_windows=60), st.randoms(use_true_random=False))
def test_split_tags_are_read_case_insensitively(policy: ScalingPolicy, rnd) -> None:
    tags = policy_to_tags(policy)
    assert len(tags) > 1
    shuffled = {
        "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in name): value
        for name, value in tags.items()
    }

    assert policy_from_tags(shuffled) == policy


def many_windows(count: int, zone: str = "America/Argentina/Buenos_Aires") -> ScalingPolicy:
    return ScalingPolicy(
        min_capacity=1,
        max_capacity=50,
        schedules=tuple(
            ScheduleWindow(
                days=frozenset(WEEKDAYS[: 1 + i % 7]),
                start=time(i % 24, 30),
                end=time((i + 5) % 24, 15, 7),
                time_zone=zone,
                min_capacity=i % 50,
            )
            for i in range(count)
        ),
    )


def test_a_long_policy_is_split_over_several_tags() -> None:
    policy = many_windows(20)
    tags = policy_to_tags(policy)

    assert len(tags) > 3
    assert all(len(value) == TAG_VALUE_MAX for value in list(tags.values())[:-1])
    assert policy_from_tags(tags) == policy


def test_a_short_policy_fits_one_tag() -> None:
    tags = policy_to_tags(POLICY)

    assert list(tags) == ["osScalingPolicy0"]
    assert policy_from_tags(tags) == POLICY


def test_a_policy_too_large_for_the_tag_budget_is_refused() -> None:
    with pytest.raises(PolicyTagError, match=f"at most {MAX_POLICY_TAGS}"):
        policy_to_tags(many_windows(200))


def test_other_tags_are_ignored_and_no_policy_tags_mean_no_policy() -> None:
    assert policy_from_tags({}) is None
    assert policy_from_tags({"env": "prod", "osScalingPolicyX": "1", "osSolution": "acme"}) is None
    tags = {"env": "prod", **policy_to_tags(POLICY), "osScalingPolicy01": "junk"}
    assert policy_from_tags(tags) == POLICY


def test_leftover_chunks_of_an_older_longer_policy_are_ignored() -> None:
    old = policy_to_tags(many_windows(20))
    new = policy_to_tags(POLICY)

    assert policy_from_tags({**old, **new}) == POLICY


def split_tags() -> dict[str, str]:
    tags = policy_to_tags(many_windows(12))
    assert len(tags) >= 3
    return tags


def drop(name: str) -> dict[str, str]:
    tags = split_tags()
    del tags[name]
    return tags


def replace(name: str, value: str) -> dict[str, str]:
    return {**split_tags(), name: value}


def mixed() -> dict[str, str]:
    # Same length and chunk count (the zone names have equal lengths), one chunk from another
    # write: only the checksum tells.
    first = policy_to_tags(many_windows(12))
    other = policy_to_tags(many_windows(12, zone="America/Argentina/Rio_Gallegos"))
    assert len(first) == len(other)
    assert first["osScalingPolicy1"] != other["osScalingPolicy1"]
    return {**first, "osScalingPolicy1": other["osScalingPolicy1"]}


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        pytest.param(drop("osScalingPolicy1"), "partial: osScalingPolicy1 of", id="middle-missing"),
        pytest.param(drop("osScalingPolicy0"), "osScalingPolicy0 is missing", id="first-missing"),
        pytest.param(replace("osScalingPolicy0", "{}"), "header", id="no-header"),
        pytest.param({"osScalingPolicy0": "9;1;00000000;{}"}, "format 9", id="newer-format"),
        pytest.param({"osScalingPolicy0": "1;0;00000000;{}"}, "announces 0", id="zero-count"),
        pytest.param({"osScalingPolicy0": "1;99;00000000;{}"}, "announces 99", id="too-many"),
        pytest.param(mixed(), "checksum", id="mixed-writes"),
        pytest.param(
            {"osScalingPolicy0": policy_to_tags(POLICY)["osScalingPolicy0"].replace("10", "11")},
            "checksum",
            id="edited",
        ),
        pytest.param(
            {"osScalingPolicy0": "osScalingPolicy0", "OSSCALINGPOLICY0": "other"},
            "twice",
            id="case-duplicates",
        ),
    ],
)
def test_corrupt_tags_are_reported(tags: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyTagError, match=message):
        policy_from_tags(tags)


def forged(payload: str) -> dict[str, str]:
    """Tags with a correct header around an arbitrary payload: corruption past the checksum."""
    return {"osScalingPolicy0": f"1;1;{zlib.crc32(payload.encode()):08x};{payload}"}


GOOD = '{"cd":10,"mn":2,"mx":10,"si":1,"so":1,"w":[]}'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "object with keys"),
        (GOOD.replace('"cd":10,', ""), "object with keys"),
        (GOOD.replace('"mn":2', '"mn":"2"'), "minCapacity must be an integer"),
        (GOOD.replace('"mn":2', '"mn":true'), "minCapacity must be an integer"),
        (GOOD.replace('"w":[]', '"w":{}'), "must be a list"),
        (GOOD.replace('"w":[]', '"w":[[1,"08:00","19:00","UTC"]]'), "5 items"),
        (GOOD.replace('"w":[]', '"w":[[128,"08:00","19:00","UTC",2]]'), "mask 128"),
        (GOOD.replace('"w":[]', '"w":[[1,"8h","19:00","UTC",2]]'), "start '8h' is not a time"),
        (GOOD.replace('"w":[]', '"w":[[1,"08:00",19,"UTC",2]]'), "end must be a time"),
        (GOOD.replace('"w":[]', '"w":[[1,"08:00","19:00",5,2]]'), "timeZone must be a string"),
        (GOOD.replace('"w":[]', '"w":[[1,"08:00","19:00","Mars/Olympus",2]]'), "IANA"),
        (GOOD.replace('"w":[]', '"w":[[1,"08:00+01:00","19:00","UTC",2]]'), "UTC offset"),
        (GOOD.replace('"mx":10', '"mx":1'), "below minCapacity"),
    ],
)
def test_tags_that_decode_to_nonsense_are_reported(payload: str, message: str) -> None:
    with pytest.raises(PolicyTagError, match=message):
        policy_from_tags(forged(payload))


def test_the_forged_baseline_is_itself_valid() -> None:
    assert policy_from_tags(forged(GOOD)) == ScalingPolicy(min_capacity=2, max_capacity=10)


def window(**changes: Any) -> ScheduleWindow:
    return dataclasses.replace(LISBON_HOURS, **changes)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (ScalingPolicy(min_capacity=-1, max_capacity=3), "minCapacity -1 is negative"),
        (ScalingPolicy(min_capacity=4, max_capacity=3), "maxCapacity 3 is below minCapacity 4"),
        (ScalingPolicy(1, 3, scale_out_step=0), "scaleOutStep 0 is below 1"),
        (ScalingPolicy(1, 3, scale_in_step=0), "scaleInStep 0 is below 1"),
        (ScalingPolicy(1, 3, cooldown_minutes=-5), "cooldownMinutes -5 is negative"),
        (ScalingPolicy(1, 10, schedules=(window(days=frozenset({"Lun"})),)), "unknown days"),
        (ScalingPolicy(1, 10, schedules=(window(time_zone=""),)), "not an IANA time zone"),
        (ScalingPolicy(1, 10, schedules=(window(time_zone="../etc/passwd"),)), "IANA"),
        (ScalingPolicy(1, 10, schedules=(window(min_capacity=-1),)), "minCapacity -1 is negative"),
        (ScalingPolicy(1, 3, schedules=(window(min_capacity=4),)), "above maxCapacity 3"),
    ],
)
def test_invalid_policies_are_explained_and_never_written(
    policy: ScalingPolicy, message: str
) -> None:
    assert any(message in error for error in policy_errors(policy))
    with pytest.raises(PolicyTagError, match="invalid scaling policy"):
        policy_to_tags(policy)


def test_a_valid_policy_has_no_errors() -> None:
    assert policy_errors(POLICY) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("osScalingPolicy0", True),
        ("OSSCALINGPOLICY12", True),
        ("osScalingPolicy", False),
        ("osScalingPolicy01", False),
        ("osScalingPolicyX", False),
        ("xosScalingPolicy0", False),
    ],
)
def test_policy_tag_names_are_recognised(name: str, expected: bool) -> None:
    assert is_policy_tag(name) is expected


# --- The trust root: a MAC only the app can compute (brief contract C5) -----------------------

VMSS = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/acme-rg/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/acme-prod-vmss"
)
OWNER_TAGS = {"managedBy": "outsystems-azure-ops", "osSolutionId": "acme", "osEnvironment": "prod"}


def signed_tags(key: bytes, scale_set_id: str = VMSS, **extra: str) -> dict[str, str]:
    """What the topology writes: owner, policy and user tags, and the MAC over them."""
    from outsystems.policy import POLICY_MAC_TAG, policy_mac

    tags = {**OWNER_TAGS, **policy_to_tags(POLICY), "costCenter": "42", **extra}
    return {**tags, POLICY_MAC_TAG: policy_mac(key, scale_set_id, tags)}


def test_the_policy_key_is_derived_from_the_seed_and_never_the_seed_itself() -> None:
    from outsystems.policy import scaling_policy_key

    key = scaling_policy_key("seed-one")
    assert len(key) == 32
    assert key == scaling_policy_key("seed-one")
    assert key != scaling_policy_key("seed-two")
    assert b"seed-one" not in key


def test_the_mac_binds_the_scale_set_the_owner_tags_and_the_policy() -> None:
    from outsystems.policy import POLICY_MAC_TAG, has_valid_mac, policy_mac, scaling_policy_key

    key = scaling_policy_key("seed")
    tags = signed_tags(key)
    assert POLICY_MAC_TAG == "osScalingPolicyMac"
    assert has_valid_mac(key, VMSS, tags)
    # ARM compares ids and tag names case-insensitively; user tags are not the app's to sign.
    assert has_valid_mac(key, VMSS.lower(), {k.upper(): v for k, v in tags.items()})
    assert has_valid_mac(key, VMSS, {**tags, "costCenter": "43", "owner": "someone"})
    assert policy_mac(key, VMSS, tags) == policy_mac(key, VMSS, {**tags, POLICY_MAC_TAG: "x"})
    # Another scale set, another key, or any covered tag changed: not the app's.
    other = VMSS.replace("acme-rg", "evil-rg")
    assert not has_valid_mac(key, other, tags)
    assert not has_valid_mac(scaling_policy_key("another seed"), VMSS, tags)
    forged_policy = policy_to_tags(dataclasses.replace(POLICY, max_capacity=5000))
    for changed in (
        {"osSolutionId": "other"},
        {"osEnvironment": "dev"},
        {"managedBy": "someone-else"},
        forged_policy,
        {f"{POLICY_TAG_PREFIX}1": "extra chunk"},
    ):
        assert not has_valid_mac(key, VMSS, {**tags, **changed}), changed
    without = {k: v for k, v in tags.items() if k != "osSolutionId"}
    assert not has_valid_mac(key, VMSS, without)


@pytest.mark.parametrize("value", [None, "", "00" * 32, "not hex", "A" * 5000])
def test_a_missing_or_forged_mac_is_refused(value: str | None) -> None:
    from outsystems.policy import POLICY_MAC_TAG, has_valid_mac, scaling_policy_key

    key = scaling_policy_key("seed")
    tags = {k: v for k, v in signed_tags(key).items() if k != POLICY_MAC_TAG}
    if value is not None:
        tags[POLICY_MAC_TAG] = value
    assert not has_valid_mac(key, VMSS, tags)


def test_capping_a_policy_keeps_every_bound_under_the_ceiling() -> None:
    from outsystems.policy import capped

    assert capped(POLICY, 100) is POLICY
    tight = capped(POLICY, 3)
    assert (tight.min_capacity, tight.max_capacity) == (2, 3)
    assert [w.min_capacity for w in tight.schedules] == [3]
    floor = capped(POLICY, 1)
    assert (floor.min_capacity, floor.max_capacity, floor.schedules[0].min_capacity) == (1, 1, 1)
    assert policy_errors(tight) == policy_errors(floor) == []
    with pytest.raises(ValueError, match="ceiling"):
        capped(POLICY, -1)
