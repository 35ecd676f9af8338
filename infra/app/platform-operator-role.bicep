// The one custom role of the app identity on the subscriptions it deploys OutSystems platforms to.
//
// Its actions come from platform-operator-role.json, the single source the ARM simulator reads too
// (docs/deploy-to-azure.md explains each one). One definition serves every managed subscription:
// a custom role is a tenant-wide object, assignable wherever its assignableScopes say.
targetScope = 'subscription'

@description('Name (a GUID) of the role definition, one per app.')
param roleDefinitionName string

@description('The function app the role is for; it makes the role name unique in the tenant (role names must be).')
param appName string

@description('Every subscription the role may be assigned on (ids, not resource ids).')
param subscriptionIds array

var role = loadJsonContent('platform-operator-role.json')

resource platformOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleDefinitionName
  properties: {
    roleName: '${role.roleName} (${appName})'
    description: role.description
    type: 'customRole'
    permissions: [
      {
        actions: role.actions
        notActions: role.notActions
        // Nothing on any data plane: no storage data, no Key Vault secret values.
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [for id in subscriptionIds: '/subscriptions/${id}']
  }
}

output roleDefinitionName string = platformOperator.name
