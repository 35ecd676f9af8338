"""Which behaviour each resource type has (types without one behave generically)."""

from __future__ import annotations

from collections.abc import Mapping

from localdev.armsim import extensions, keyvault, network, rbac, setup_model
from localdev.armsim.behaviours import BEHAVIOURS
from localdev.armsim.hooks import Behaviour

_ALL: Mapping[str, Behaviour] = {
    **BEHAVIOURS,
    "microsoft.network/natgateways": network.NatGateway(),
    "microsoft.network/applicationgatewaywebapplicationfirewallpolicies": network.WafPolicy(),
    "microsoft.network/applicationgateways": network.ApplicationGateway(),
    "microsoft.managedidentity/userassignedidentities": rbac.ManagedIdentity(),
    "microsoft.authorization/roleassignments": rbac.RoleAssignment(),
    "microsoft.keyvault/vaults": keyvault.KeyVault(),
    "microsoft.keyvault/vaults/secrets": keyvault.KeyVaultSecret(),
    "microsoft.keyvault/deletedvaults": keyvault.DeletedVault(),
}
_GENERIC = Behaviour()

# A Custom Script Extension running the OutSystems setup script ends as such a server would.
extensions.set_default_outcome_decider("CustomScriptExtension", setup_model.decide)


def for_type(type_name: str) -> Behaviour:
    """The behaviour of a type (the generic no-op behaviour when it has none)."""
    return _ALL.get(type_name.lower(), _GENERIC)
