// The app identity's rights on one subscription it deploys OutSystems platforms to: the custom
// platform operator role (platform-operator-role.bicep), assigned at subscription scope because the
// app creates the platforms' resource groups itself.
//
// The role includes Microsoft.Authorization/roleAssignments/write and /delete (the app grants each
// environment's identity Key Vault Secrets User on its own secrets and the file share role on the
// platform's storage account). A condition on this assignment limits both actions, the way
// Microsoft documents it in "Examples to delegate Azure role assignment management with
// conditions" (https://learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples,
// MicrosoftDocs/azure-docs articles/role-based-access-control/delegate-role-assignments-examples.md
// at 0b8729eaf7eb0aabc6390cb17348d19761285f12: "Constrain roles", "Constrain roles and principal
// types", and the ForAnyOfAllValues:GuidNotEquals form of "Allow most roles"):
//   - only the roles listed in assignableRoleIds of platform-operator-role.json;
//   - only to service principals (managed identities are), never to users or groups;
//   - never to the app's own identity, so it cannot give itself any data-plane access.
// Creating an assignment reads its attributes from the request (@Request), deleting one from the
// existing assignment (@Resource), hence two clauses.
targetScope = 'subscription'

param identityPrincipalId string

@description('Name (GUID) of the platform operator role definition.')
param roleDefinitionName string

var role = loadJsonContent('platform-operator-role.json')
var assignableRoles = join(role.assignableRoleIds, ', ')
var writeAllowed = '@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${assignableRoles}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${identityPrincipalId}}'
var deleteAllowed = '@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${assignableRoles}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${identityPrincipalId}}'
var roleAssignmentCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (${writeAllowed})) AND ((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/delete\'})) OR (${deleteAllowed}))'

var roleDefinitionId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)

resource platformOperatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, identityPrincipalId, roleDefinitionId)
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
    description: 'OutSystems Ops: deploy, scale and tear down OutSystems platforms (docs/deploy-to-azure.md).'
    condition: roleAssignmentCondition
    conditionVersion: '2.0'
  }
}

output roleAssignmentCondition string = roleAssignmentCondition
