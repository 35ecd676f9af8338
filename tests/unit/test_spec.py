"""The platform spec: defaults, the samples, and every kind of invalid input with its path."""

from __future__ import annotations

import ipaddress
import json
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from outsystems.errors import FieldError, SpecError
from outsystems.policy import ScalingPolicy, ScheduleWindow
from outsystems.spec import (
    DEFAULT_VM_SIZE,
    PlatformSpec,
    address_plan,
    minimum_address_prefix,
    parse_spec,
    spec_json_schema,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SUB = "11111111-2222-3333-4444-555555555555"
OTHER_SUB = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "Sup3r-S3cret-Value!"


def subnet_id(name: str, sub: str = SUB, vnet: str = "corp-vnet") -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/net-rg/providers/Microsoft.Network/"
        f"virtualNetworks/{vnet}/subnets/{name}"
    )


EXISTING = {env: subnet_id(env) for env in ("dev", "test", "prod", "life", "gateway")}


def parse(body: object, solution_id: str = "acme", **kwargs: Any) -> PlatformSpec:
    kwargs.setdefault("default_subscription_id", SUB)
    return parse_spec(solution_id, body, **kwargs)


def errors_of(body: object, solution_id: str = "acme", **kwargs: Any) -> list[FieldError]:
    with pytest.raises(SpecError) as raised:
        parse(body, solution_id, **kwargs)
    assert raised.value.details, "a spec error always says which field is wrong"
    return raised.value.details


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def frontends(**fields: Any) -> dict[str, Any]:
    return {"environments": {"prod": {"frontends": fields}}}


def schedule(**fields: Any) -> dict[str, Any]:
    window = {
        "days": ["Mon"],
        "start": "08:00",
        "end": "19:00",
        "timeZone": "Europe/Lisbon",
        "minCapacity": 4,
    }
    return frontends(schedules=[{**window, **fields}])


# --- defaults and samples ---------------------------------------------------------------------


def test_every_documented_default_applies_to_a_minimal_spec() -> None:
    spec = parse({"location": "westeurope"})
    assert spec.solution_id == "acme"
    assert spec.subscription_id == SUB
    assert spec.resource_group == "acme-rg"
    assert spec.network.address_space == "10.0.0.0/16"
    assert spec.network.existing_subnet_ids is None
    assert spec.image == "windows-server"
    assert spec.bastion is False
    assert spec.platform_version == "11.32.0"
    assert spec.lifetime_version == "11.25.2"
    assert spec.admin_username == "osadmin"
    for env in ("dev", "test", "prod", "life"):
        assert spec.environments.vm_size(env) == DEFAULT_VM_SIZE == "Standard_F4s_v2"
    prod = spec.environments.prod
    assert prod.mode == "farm"
    assert spec.is_farm
    assert prod.frontends is not None
    assert prod.frontends.vm_size == "Standard_F4s_v2"
    assert (prod.frontends.capacity, prod.frontends.min_capacity) == (2, 2)
    # The trial license the setup installs allows two front-ends.
    assert spec.license == "trial"
    assert prod.frontends.max_capacity == 2
    assert spec.image_version_of("platformserver") == "20348.2762.241006"
    assert spec.naming == "marketplace"
    assert spec.environments.waf("prod") == "Prevention"
    assert spec.environments.waf("dev") == "Off"
    assert (prod.frontends.scale_out_step, prod.frontends.scale_in_step) == (1, 1)
    assert prod.frontends.cooldown_minutes == 10
    assert prod.frontends.schedules == ()
    assert spec.tls is None
    assert spec.tags == {}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"minCapacity": 4}, (4, 4, 10)),
        ({"maxCapacity": 1}, (1, 1, 1)),
        ({"minCapacity": 12}, (12, 12, 12)),
        ({"capacity": 5}, (5, 2, 10)),
    ],
)
def test_capacity_defaults_are_clamped_to_the_given_bounds(
    given: dict[str, int], expected: tuple[int, int, int]
) -> None:
    spec = parse(merged({"location": "westeurope", "license": "own"}, frontends(**given)))
    assert spec.frontends is not None
    got = (spec.frontends.capacity, spec.frontends.min_capacity, spec.frontends.max_capacity)
    assert got == expected


def test_farm_sample_parses_with_its_policy() -> None:
    spec = parse((EXAMPLES / "spec-farm.json").read_text())
    assert spec.tags == {"costCenter": "it-platform"}
    assert spec.frontends is not None
    assert spec.frontends.policy() == ScalingPolicy(
        min_capacity=2,
        max_capacity=8,
        scale_out_step=2,
        scale_in_step=1,
        cooldown_minutes=10,
        schedules=(
            ScheduleWindow(
                days=frozenset({"Mon", "Tue", "Wed", "Thu", "Fri"}),
                start=time(8, 0),
                end=time(19, 0),
                time_zone="Europe/Lisbon",
                min_capacity=4,
            ),
        ),
    )
    assert spec.frontends.vm_size == "Standard_F8s_v2"


def test_standalone_sample_parses_without_frontends() -> None:
    spec = parse((EXAMPLES / "spec-standalone.json").read_bytes())
    assert spec.location == "northeurope"
    assert spec.environments.prod.mode == "standalone"
    assert not spec.is_farm
    assert spec.frontends is None
    assert spec.environments.vm_size("prod") == "Standard_D4s_v3"


def test_demo_sample_parses() -> None:
    spec = parse(json.loads((EXAMPLES / "spec-demo.json").read_text()))
    assert spec.frontends is not None
    assert (spec.frontends.max_capacity, spec.frontends.cooldown_minutes) == (6, 1)


def test_given_subscription_and_group_are_kept_and_normalized() -> None:
    spec = parse(
        {"location": "westeurope", "subscriptionId": OTHER_SUB.upper(), "resourceGroup": "My_RG"},
        managed_subscription_ids=[OTHER_SUB],
    )
    assert spec.subscription_id == OTHER_SUB
    assert spec.resource_group == "My_RG"


def test_existing_subnets_replace_the_new_network() -> None:
    body = {
        "location": "westeurope",
        "bastion": True,
        "network": {"existingSubnetIds": {**EXISTING, "bastion": subnet_id("AzureBastionSubnet")}},
    }
    spec = parse(body)
    assert spec.network.address_space is None
    assert spec.address_plan() is None
    assert spec.network.existing_subnet_ids is not None
    assert spec.network.existing_subnet_ids.subnet_id("gateway") == EXISTING["gateway"]


def test_normalized_spec_round_trips_through_json() -> None:
    body = merged(
        json.loads((EXAMPLES / "spec-farm.json").read_text()),
        {"tls": {"certificateSecretId": "https://acme-kv.vault.azure.net/secrets/tls"}},
    )
    spec = parse(body)
    document = json.loads(json.dumps(spec.to_json_dict()))
    assert document["solutionId"] == "acme"
    assert document["environments"]["prod"]["frontends"]["schedules"][0]["timeZone"] == (
        "Europe/Lisbon"
    )
    assert PlatformSpec.from_json_dict(document) == spec
    # Parsing the normalized spec as a body again yields the same spec.
    del document["solutionId"]
    assert parse(document) == spec


def test_from_json_dict_reports_invalid_documents_as_spec_errors() -> None:
    document = parse({"location": "westeurope"}).to_json_dict()
    document["location"] = "West Europe"
    with pytest.raises(SpecError) as raised:
        PlatformSpec.from_json_dict(document)
    assert [d.target for d in raised.value.details] == ["location"]


def test_spec_is_frozen() -> None:
    spec = parse({"location": "westeurope"})
    with pytest.raises(ValueError, match="frozen"):
        spec.location = "northeurope"


# --- invalid specs: each names the field the user wrote --------------------------------------

INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, patch of a minimal valid body, target, fragment of the message)
    ("location missing", {"location": None}, "location", "is required"),
    ("image version floating", {"imageVersion": "latest"}, "imageVersion", "pinned"),
    ("image version malformed", {"imageVersion": "2.28"}, "imageVersion", "Major.Minor.Build"),
    ("base image unknown for the version",
     {"image": "outsystems-base", "platformVersion": "11.99.0"}, "imageVersion",
     "platformVersion 11.99.0"),
    ("waf mode", {"environments": {"test": {"waf": "On"}}}, "environments.test.waf", ""),
    ("tls identity not an identity",
     {"tls": {"certificateSecretId": "https://kv1.vault.azure.net/secrets/c",
              "identityId": "/subscriptions/x/resourceGroups/g"}},
     "tls.identityId", "user-assigned managed identity"),
    ("sql entra admin object id", {"sqlEntraAdmin": {"login": "dbas", "objectId": "dbas"}},
     "sqlEntraAdmin.objectId", "GUID"),
    ("naming scheme", {"naming": "custom"}, "naming", ""),
    ("admin user starting with a digit", {"adminUsername": "1ops"}, "adminUsername",
     "start with a letter"),
    ("location display name", {"location": "West Europe"}, "location", "'westeurope'"),
    ("location not a string", {"location": 3}, "location", "must be a string"),
    ("vm size", {"environments": {"dev": {"vmSize": "F4s_v2"}}}, "environments.dev.vmSize",
     "Standard_F4s_v2"),
    ("frontend vm size", frontends(vmSize="big"), "environments.prod.frontends.vmSize",
     "VM size"),
    ("cidr host bits", {"network": {"addressSpace": "10.0.0.1/16"}}, "network.addressSpace",
     "did you mean '10.0.0.0/16'"),
    ("cidr garbage", {"network": {"addressSpace": "ten/8"}}, "network.addressSpace", "CIDR"),
    ("cidr ipv6", {"network": {"addressSpace": "fd00::/48"}}, "network.addressSpace", "IPv4"),
    ("cidr no prefix", {"network": {"addressSpace": "10.0.0.0"}}, "network.addressSpace",
     "CIDR"),
    ("space too small", {"network": {"addressSpace": "10.0.0.0/25"}}, "network.addressSpace",
     "at least a /24"),
    ("space too small for bastion", {"bastion": True, "network": {"addressSpace": "10.0.0.0/24"}},
     "network.addressSpace", "at least a /23"),
    ("both network kinds", {"network": {"addressSpace": "10.0.0.0/16",
                                        "existingSubnetIds": EXISTING}},
     "network", "not both"),
    ("subnet id malformed", {"network": {"existingSubnetIds": {**EXISTING, "dev": "/subnets/x"}}},
     "network.existingSubnetIds.dev", "subnet resource id"),
    ("subnet missing", {"network": {"existingSubnetIds": {k: v for k, v in EXISTING.items()
                                                          if k != "gateway"}}},
     "network.existingSubnetIds.gateway", "is required"),
    ("gateway subnet shared", {"network": {"existingSubnetIds": {**EXISTING,
                                                                 "gateway": EXISTING["prod"]}}},
     "network.existingSubnetIds.gateway", "of its own"),
    ("subnet in other subscription",
     {"network": {"existingSubnetIds": {**EXISTING, "test": subnet_id("test", OTHER_SUB)}}},
     "network.existingSubnetIds.test", "subscription"),
    ("bastion without its subnet", {"bastion": True, "network": {"existingSubnetIds": EXISTING}},
     "network.existingSubnetIds.bastion", "AzureBastionSubnet"),
    ("bastion subnet misnamed",
     {"bastion": True,
      "network": {"existingSubnetIds": {**EXISTING, "bastion": subnet_id("bastion")}}},
     "network.existingSubnetIds.bastion", "AzureBastionSubnet"),
    ("unknown subnet key", {"network": {"existingSubnetIds": {**EXISTING, "prd": "x"}}},
     "network.existingSubnetIds.prd", "did you mean 'prod'"),
    ("image", {"image": "ubuntu"}, "image", "windows-server"),
    ("bastion not a bool", {"bastion": "yes"}, "bastion", "true or false"),
    ("platform version", {"platformVersion": "12.0.0"}, "platformVersion", "11.x.y"),
    ("lifetime version", {"lifetimeVersion": "11.25"}, "lifetimeVersion", "11.x.y"),
    ("reserved username", {"adminUsername": "admin"}, "adminUsername", "reserve"),
    ("reserved username any case", {"adminUsername": "Administrator"}, "adminUsername",
     "reserve"),
    ("username too long", {"adminUsername": "a" * 21}, "adminUsername", "1-20"),
    ("username trailing dot", {"adminUsername": "os.admin."}, "adminUsername", "end with '.'"),
    ("username characters", {"adminUsername": "os admin"}, "adminUsername", "letters"),
    ("min capacity zero", frontends(minCapacity=0), "environments.prod.frontends.minCapacity",
     "greater than or equal to 1"),
    ("max below min", frontends(minCapacity=5, maxCapacity=3),
     "environments.prod.frontends.maxCapacity", "at least minCapacity (5)"),
    ("capacity above max", frontends(capacity=11, maxCapacity=10),
     "environments.prod.frontends.capacity", "at most maxCapacity (10)"),
    ("capacity below min", frontends(capacity=1, minCapacity=2),
     "environments.prod.frontends.capacity", "at least minCapacity (2)"),
    ("max capacity over 1000", frontends(maxCapacity=1001),
     "environments.prod.frontends.maxCapacity", "less than or equal to 1000"),
    ("scale out step", frontends(scaleOutStep=0), "environments.prod.frontends.scaleOutStep",
     "greater than or equal to 1"),
    ("scale in step", frontends(scaleInStep=0), "environments.prod.frontends.scaleInStep",
     "greater than or equal to 1"),
    ("cooldown negative", frontends(cooldownMinutes=-1),
     "environments.prod.frontends.cooldownMinutes", "greater than or equal to 0"),
    ("capacity as text", frontends(capacity="2"), "environments.prod.frontends.capacity",
     "integer"),
    ("capacity fractional", frontends(capacity=2.5), "environments.prod.frontends.capacity",
     "integer"),
    ("prod subnet too small for max", frontends(maxCapacity=300),
     "environments.prod.frontends.maxCapacity", "room for 250 front-ends"),
    ("schedule day", schedule(days=["Monday"]), "environments.prod.frontends.schedules.0.days.0",
     "'Mon'"),
    ("schedule no days", schedule(days=[]), "environments.prod.frontends.schedules.0.days",
     "at least 1"),
    ("schedule repeated day", schedule(days=["Mon", "Tue", "Mon"]),
     "environments.prod.frontends.schedules.0.days", "Mon more than once"),
    ("schedule start", schedule(start="25:00"), "environments.prod.frontends.schedules.0.start",
     "HH:MM"),
    ("schedule end", schedule(end="8:00"), "environments.prod.frontends.schedules.0.end",
     "HH:MM"),
    ("schedule empty window", schedule(start="08:00", end="08:00"),
     "environments.prod.frontends.schedules.0.end", "must differ from start"),
    ("schedule time zone", schedule(timeZone="Europe/Lisbn"),
     "environments.prod.frontends.schedules.0.timeZone", "did you mean 'Europe/Lisbon'"),
    ("schedule time zone path", schedule(timeZone="../../etc/passwd"),
     "environments.prod.frontends.schedules.0.timeZone", "IANA"),
    ("schedule floor above max", merged(schedule(minCapacity=11), {"license": "own"}),
     "environments.prod.frontends.schedules.0.minCapacity",
     "between minCapacity (2) and maxCapacity (10)"),
    ("trial license exceeded", frontends(maxCapacity=4), "environments.prod.frontends.maxCapacity",
     "trial license"),
    ("trial license exceeded by the minimum", frontends(minCapacity=3),
     "environments.prod.frontends.maxCapacity", "set license 'own'"),
    ("schedule floor below min", merged(schedule(minCapacity=1), frontends(minCapacity=2)),
     "environments.prod.frontends.schedules.0.minCapacity", "between minCapacity (2)"),
    ("schedule time zone missing", frontends(schedules=[{"days": ["Mon"], "start": "08:00",
                                                         "end": "09:00", "minCapacity": 2}]),
     "environments.prod.frontends.schedules.0.timeZone", "is required"),
    ("frontends for standalone", {"environments": {"prod": {"mode": "standalone",
                                                            "frontends": {}}}},
     "environments.prod.frontends", "only allowed with mode 'farm'"),
    ("prod mode", {"environments": {"prod": {"mode": "cluster"}}}, "environments.prod.mode",
     "'farm'"),
    ("unknown environment", {"environments": {"staging": {}}}, "environments.staging",
     "unknown field"),
    ("environments not an object", {"environments": []}, "environments", "JSON object"),
    ("tag key character", {"tags": {"a/b": "x"}}, "tags.a/b", "must not contain /"),
    ("tag value too long", {"tags": {"k": "v" * 257}}, "tags.k", "256"),
    ("tag key too long", {"tags": {"k" * 129: "v"}}, "tags." + "k" * 129, "128"),
    ("tag key ours", {"tags": {"ManagedBy": "me"}}, "tags.ManagedBy", "set by the platform"),
    ("tag key policy", {"tags": {"osScalingPolicy0": "x"}}, "tags.osScalingPolicy0",
     "set by the platform"),
    ("tag key azure prefix", {"tags": {"azure-owner": "x"}}, "tags.azure-owner", "reserved"),
    ("tag value not text", {"tags": {"n": 3}}, "tags.n", "must be strings"),
    ("too many tags", {"tags": {f"t{i}": "x" for i in range(47)}}, "tags", "at most 45 tags"),
    ("certificate url", {"tls": {"certificateSecretId": "https://example.com/tls"}},
     "tls.certificateSecretId", "Key Vault secret URL"),
    ("certificate missing", {"tls": {}}, "tls.certificateSecretId", "is required"),
    ("subscription not a guid", {"subscriptionId": "my-subscription"}, "subscriptionId", "GUID"),
    ("resource group characters", {"resourceGroup": "bad/rg"}, "resourceGroup", "1-90"),
    ("resource group trailing dot", {"resourceGroup": "rg."}, "resourceGroup", "not ending"),
    ("unknown top-level field", {"lcation": "westeurope"}, "lcation",
     "did you mean 'location'"),
    ("unknown field wrong case", {"environments": {"dev": {"vmsize": "Standard_F4s_v2"}}},
     "environments.dev.vmsize", "did you mean 'vmSize'"),
    ("unknown nested field", frontends(maxCapcity=3), "environments.prod.frontends.maxCapcity",
     "did you mean 'maxCapacity'"),
    ("unknown schedule field", schedule(tz="UTC"),
     "environments.prod.frontends.schedules.0.tz", "unknown field"),
    ("solution id in body", {"solutionId": "acme"}, "solutionId", "URL path"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("patch", "target", "fragment"),
    [pytest.param(patch, target, fragment, id=case) for case, patch, target, fragment in INVALID],
)
def test_invalid_spec_names_the_field(patch: dict[str, Any], target: str, fragment: str) -> None:
    body = {k: v for k, v in merged({"location": "westeurope"}, patch).items() if v is not None}
    details = errors_of(body)
    matching = [d for d in details if d.target == target]
    assert matching, f"no error at {target}: {details}"
    assert any(fragment in d.message for d in matching), matching


def test_too_many_schedules_for_the_policy_tags_are_refused() -> None:
    windows = [
        {"days": ["Mon"], "start": f"{h:02d}:00", "end": f"{h:02d}:30",
         "timeZone": "America/Argentina/Buenos_Aires", "minCapacity": 2}
        for h in range(24)
    ] * 5  # fmt: skip
    details = errors_of({"location": "westeurope", **frontends(schedules=windows)})
    assert [d.target for d in details] == ["environments.prod.frontends.schedules"]
    assert "tags" in details[0].message


@pytest.mark.parametrize("solution_id", ["Acme", "1acme", "acme-1", "abcdefg", ""])
def test_invalid_solution_id_is_reported_as_the_path_parameter(solution_id: str) -> None:
    details = errors_of({"location": "westeurope"}, solution_id=solution_id)
    assert [d.target for d in details] == ["solutionId"]
    assert "lowercase letters and digits" in details[0].message


def test_all_problems_are_reported_together() -> None:
    body = {
        "location": "West Europe",
        "adminUsername": "root",
        "adminPassword": SECRET,
        "environments": {"prod": {"frontends": {"maxCapcity": 3}}},
    }
    targets = {d.target for d in errors_of(body, solution_id="ACME")}
    assert targets == {
        "adminPassword",
        "solutionId",
        "location",
        "adminUsername",
        "environments.prod.frontends.maxCapcity",
    }


# --- secrets are never part of the spec -------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "target", "setting"),
    [
        ({"adminPassword": SECRET}, "adminPassword", "VM_ADMIN_PASSWORD"),
        ({"sqlAdminPassword": SECRET}, "sqlAdminPassword", "SQL_ADMIN_PASSWORD"),
        ({"PASSWORD": SECRET}, "PASSWORD", "VM_ADMIN_PASSWORD"),
        ({"environments": {"dev": {"pwd": SECRET}}}, "environments.dev.pwd", "VM_ADMIN_PASSWORD"),
        ({"sql": {"admin_pwd": SECRET}}, "sql.admin_pwd", "SQL_ADMIN_PASSWORD"),
        ({"privateKey": SECRET}, "privateKey", "PLATFORM_KEY_SEED"),
        ({"environments": {"prod": {"private_key": SECRET}}}, "environments.prod.private_key",
         "PLATFORM_KEY_SEED"),
        ({"secret": SECRET}, "secret", "PLATFORM_KEY_SEED"),
        ({"tls": {"clientSecret": {"value": SECRET}}}, "tls.clientSecret", "VM_ADMIN_PASSWORD"),
        ({"tags": {"Password": SECRET}}, "tags.Password", "VM_ADMIN_PASSWORD"),
        (schedule(adminPassword=SECRET), "environments.prod.frontends.schedules.0.adminPassword",
         "VM_ADMIN_PASSWORD"),
    ],
)  # fmt: skip
def test_password_like_fields_are_refused_without_echoing_them(
    patch: dict[str, Any], target: str, setting: str
) -> None:
    body = merged({"location": "westeurope"}, patch)
    with pytest.raises(SpecError) as raised:
        parse(body)
    matching = [d for d in raised.value.details if d.target == target]
    assert matching, raised.value.details
    assert setting in matching[0].message
    assert "secrets are never part of the spec" in matching[0].message
    # The secret's own field is not reported a second time as merely unknown.
    assert len(matching) == 1
    rendered = json.dumps(raised.value.to_envelope()) + str(raised.value) + repr(raised.value)
    assert SECRET not in rendered


def test_certificate_secret_reference_is_not_a_secret() -> None:
    spec = parse(
        {
            "location": "westeurope",
            "tls": {"certificateSecretId": "https://acme-kv.vault.azure.net/secrets/tls/"
                    "0123456789abcdef0123456789abcdef"},
        }
    )  # fmt: skip
    assert spec.tls is not None


def test_secret_in_malformed_body_is_not_echoed() -> None:
    text = '{"location": "westeurope", "adminPassword": "' + SECRET + '",'
    with pytest.raises(SpecError) as raised:
        parse(text)
    assert SECRET not in json.dumps(raised.value.to_envelope())


# --- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("{", "malformed JSON"),
        (b'{"location": "westeurope",}', "malformed JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        ('{"location": "westeurope", "location": "northeurope"}', "appears twice"),
        ('{"location": "westeurope", "bastion": NaN}', "NaN"),
        ("[1, 2]", "JSON object"),
        ('"westeurope"', "JSON object"),
        ("null", "JSON object"),
        ([], "JSON object"),
        (None, "JSON object"),
    ],
)
def test_malformed_body_is_a_spec_error_on_the_body(body: object, fragment: str) -> None:
    details = errors_of(body)
    assert [d.target for d in details] == ["body"]
    assert fragment in details[0].message


# --- subscriptions ----------------------------------------------------------------------------


def test_unmanaged_subscription_names_the_setting() -> None:
    details = errors_of({"location": "westeurope", "subscriptionId": OTHER_SUB})
    assert [d.target for d in details] == ["subscriptionId"]
    assert "MANAGED_SUBSCRIPTION_IDS" in details[0].message


def test_managed_subscription_is_accepted_whatever_its_case() -> None:
    spec = parse(
        {"location": "westeurope", "subscriptionId": OTHER_SUB},
        managed_subscription_ids=[f" {OTHER_SUB.upper()} "],
    )
    assert spec.subscription_id == OTHER_SUB


def test_default_subscription_is_used_and_lowercased() -> None:
    spec = parse({"location": "westeurope"}, default_subscription_id=SUB.upper())
    assert spec.subscription_id == SUB


# --- the error envelope and the schema --------------------------------------------------------


def test_spec_error_becomes_the_api_envelope() -> None:
    with pytest.raises(SpecError) as raised:
        parse(merged({"location": "westeurope"}, frontends(minCapacity=5, maxCapacity=3)))
    assert raised.value.to_envelope() == {
        "error": {
            "code": "InvalidSpec",
            "message": "The platform spec is invalid.",
            "details": [
                {
                    "target": "environments.prod.frontends.maxCapacity",
                    "message": "must be at least minCapacity (5)",
                }
            ],
        }
    }


def test_json_schema_describes_the_body_by_alias() -> None:
    schema = spec_json_schema()
    assert "solutionId" not in schema["properties"]
    assert schema["required"] == ["location"]
    assert schema["additionalProperties"] is False
    assert {"subscriptionId", "resourceGroup", "adminUsername", "environments"} <= set(
        schema["properties"]
    )
    frontends_schema = schema["$defs"]["FrontendsSpec"]
    assert "maxCapacity" in frontends_schema["properties"]
    json.dumps(schema)


# --- the address plan -------------------------------------------------------------------------


def test_default_address_plan_is_the_marketplace_layout() -> None:
    plan = address_plan("10.0.0.0/16", bastion=True)
    assert {k: str(v) for k, v in plan.subnets.items()} == {
        "dev": "10.0.0.0/24",
        "test": "10.0.1.0/24",
        "prod": "10.0.2.0/24",
        "life": "10.0.3.0/24",
        "gateway": "10.0.4.0/24",
        "bastion": "10.0.5.0/26",
    }
    assert plan.static_address("prod") == "10.0.2.4"
    assert "bastion" not in address_plan("10.0.0.0/16", bastion=False).subnets


@pytest.mark.parametrize("bastion", [False, True])
@pytest.mark.parametrize("prefix", range(8, 25))
def test_address_plans_fit_and_never_overlap(prefix: int, bastion: bool) -> None:
    space = f"10.0.0.0/{prefix}"
    if prefix > minimum_address_prefix(bastion):
        with pytest.raises(ValueError, match=f"at least a /{minimum_address_prefix(bastion)}"):
            address_plan(space, bastion)
        return
    plan = address_plan(space, bastion)
    subnets = list(plan.subnets.values())
    assert len(subnets) == (6 if bastion else 5)
    network = ipaddress.IPv4Network(space)
    for index, subnet in enumerate(subnets):
        assert subnet.subnet_of(network)
        assert subnet.prefixlen <= 27
        assert all(not subnet.overlaps(other) for other in subnets[index + 1 :])
    if bastion:
        assert plan.subnet("bastion").prefixlen <= 26


def test_deeply_nested_bodies_are_refused_not_crashed_on() -> None:
    nested: dict[str, Any] = {"location": "westeurope"}
    inner = nested
    for _ in range(5000):
        inner["x"] = {}
        inner = inner["x"]
    details = errors_of(nested)
    assert any("nested deeper" in d.message for d in details)
    text = '{"location": "westeurope", "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    details = errors_of(text)
    assert [d.target for d in details] == ["body"]


def test_new_platforms_get_the_marketplace_names_and_deployed_ones_keep_theirs() -> None:
    from outsystems.spec import naming_change, resolve_naming

    assert resolve_naming({"location": "x"}, None, None) == "marketplace"
    # Deployed before naming schemes existed: the recorded spec has none.
    assert resolve_naming({}, {"solutionId": "acme"}, None) == "legacy"
    assert resolve_naming({}, {"naming": "marketplace"}, None) == "marketplace"
    # Task hub purged: the resource group's tag remembers; a group of ours without it is old.
    assert resolve_naming({}, None, {"osnaming": "marketplace"}) == "marketplace"
    assert resolve_naming({}, None, {"managedBy": "outsystems-azure-ops"}) == "legacy"
    assert resolve_naming({"naming": "legacy"}, None, None) is None
    spec = parse({"location": "westeurope", "naming": "marketplace"})
    change = naming_change({"naming": "legacy"}, spec)
    assert change is not None
    assert change.target == "naming"
    assert naming_change({"naming": "marketplace"}, spec) is None
    assert naming_change(None, spec) is None
