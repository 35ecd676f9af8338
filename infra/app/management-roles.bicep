// The management roles of the app identity on one subscription it deploys OutSystems platforms to.
//
// Least privilege instead of Contributor: each built-in role covers one family of resources the
// platform graph contains, and a custom role adds the only subscription-level action the app needs
// (creating and deleting the platform's resource group). What the roles leave out on purpose:
// role assignments, policy, Key Vault, web apps, and every data plane.
targetScope = 'subscription'

param identityPrincipalId string

var builtInRoles = [
  // VMs, scale sets (capacity changes, the Custom Script Extension), managed disks, NICs.
  '9980e02c-c2be-4d73-94e8-173b1dc7cf3c' // Virtual Machine Contributor
  // VNet, subnets, NSGs, public IPs, Application Gateways, Bastion.
  '4d97b98b-1d4f-4787-a291-c67834d212e7' // Network Contributor
  // SQL logical servers, the three catalogs, VNet rules (not security policies or data).
  '6d8ee4ec-f05a-4a1d-8b00-a9b17e38b437' // SQL Server Contributor
  // The platform's storage account and its file share (management plane only).
  '17d1049b-9a84-46fb-8f53-869881c3d3ab' // Storage Account Contributor
  // Metric alerts and action groups on the production scale set.
  '749f88d5-cbae-40b8-bcfc-e573ddc772fa' // Monitoring Contributor
]

// Resource groups are subscription-level resources, and no built-in role narrower than
// Contributor can create them; this custom role grants exactly that.
resource resourceGroupOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'outsystems-ops-resource-group-operator')
  properties: {
    roleName: 'OutSystems Ops resource group operator (${subscription().subscriptionId})'
    description: 'Create, read and delete the resource groups of OutSystems platforms, and read Marketplace image terms.'
    type: 'customRole'
    permissions: [
      {
        actions: [
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          'Microsoft.Resources/subscriptions/resourceGroups/delete'
          'Microsoft.Resources/subscriptions/resourceGroups/resources/read'
          'Microsoft.MarketplaceOrdering/offerTypes/publishers/offers/plans/agreements/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource builtInAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in builtInRoles: {
    name: guid(subscription().id, identityPrincipalId, roleId)
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource resourceGroupOperatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, identityPrincipalId, resourceGroupOperator.id)
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: resourceGroupOperator.id
  }
}
