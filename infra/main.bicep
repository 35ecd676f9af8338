// The function app that provisions and operates OutSystems 11 on Azure, deployed by `azd up`.
//
// Subscription scope because the app's identity needs roles on the subscription(s) it manages
// (it creates resource groups there) and azd creates the app's own resource group here.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds the short unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of the function app and its resources (must offer the Flex Consumption plan).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person or pipeline running azd; gets Key Vault Secrets Officer on the app vault so the post-deploy hook can store ALERT_WEBHOOK_URL. Empty to skip.')
param principalId string = ''

@description('Subscription platforms go to when a spec names none (AZURE_SUBSCRIPTION_ID of the app).')
param platformSubscriptionId string = subscription().subscriptionId

@description('Further subscriptions (comma-separated ids) the app may deploy platforms to; it gets the same platform operator role there.')
param managedSubscriptionIds string = ''

@description('Create the platform operator role and assign it to the app identity on the platform subscription(s). Needs Owner or User Access Administrator there (a custom role and a role assignment that may itself assign roles); set false to have an administrator deploy app/platform-operator-role.bicep and app/management-roles.bicep.')
param grantManagementRoles bool = true

@description('Upper bound of Flex Consumption instances (40 is the smallest the plan accepts).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

// The two passwords are optional fallbacks: the app generates each environment's own VM and SQL
// admin passwords and keeps them in that platform's Key Vault. Only platforms deployed before that
// still read these (docs/deploy-to-azure.md, "Migrating from the global passwords").
@secure()
@description('Optional. Windows admin password of the VMs of platforms deployed before per-environment secrets (Key Vault secret VM-ADMIN-PASSWORD). Empty: no fallback.')
param vmAdminPassword string = ''

@secure()
@description('Optional. SQL admin password of platforms deployed before per-environment secrets (Key Vault secret SQL-ADMIN-PASSWORD). Empty: no fallback.')
param sqlAdminPassword string = ''

@secure()
@description('Secret each environment\'s OutSystems private key is derived from. Never change it once platforms exist: their scale sets need the same key.')
@metadata({
  azd: {
    type: 'generate'
    config: { length: 48, noSpecial: true }
  }
})
param platformKeySeed string

@description('Hard ceiling of any scale set\'s capacity, whatever a spec or a policy tag says (SCALING_MAX_CAPACITY).')
@minValue(1)
param scalingMaxCapacity int = 100

@description('Alerts fired (or resolved) longer ago than this many minutes are ignored (ALERT_MAX_AGE_MINUTES).')
@minValue(1)
param alertMaxAgeMinutes int = 60

@description('Comma-separated VNet resource ids that specs may place platforms in (existingSubnetIds); empty allows any VNet of a managed subscription (ALLOWED_VNET_IDS).')
param allowedVnetIds string = ''

@secure()
@description('The app\'s own /api/alerts URL with a function key. Leave empty: the post-deploy hook creates the key and stores the URL.')
param alertWebhookUrl string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}outsystems-ops-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var otherSubscriptionIds = empty(managedSubscriptionIds) ? [] : split(replace(managedSubscriptionIds, ' ', ''), ',')
// Granting nothing is an empty loop (instead of a condition in the loop, which reads less plainly).
var managementSubscriptionIds = grantManagementRoles ? union([platformSubscriptionId], otherSubscriptionIds) : []
// The custom role's name (a GUID), one per app: known before deployment, shared by its definition
// and its assignments.
var platformOperatorRoleName = guid(functionAppName, 'outsystems-ops-platform-operator')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}outsystems-ops-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    eventsQueueName: 'platform-events'
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    vmAdminPassword: vmAdminPassword
    sqlAdminPassword: sqlAdminPassword
    platformKeySeed: platformKeySeed
    alertWebhookUrl: alertWebhookUrl
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// One custom role for every managed subscription, then one conditioned assignment on each.
module platformOperatorRole 'app/platform-operator-role.bicep' = if (grantManagementRoles) {
  name: 'platform-operator-role'
  scope: subscription(platformSubscriptionId)
  params: {
    roleDefinitionName: platformOperatorRoleName
    appName: functionAppName
    subscriptionIds: managementSubscriptionIds
  }
}

module managementRoles 'app/management-roles.bicep' = [
  for subscriptionId in managementSubscriptionIds: {
    name: 'management-roles-${subscriptionId}'
    scope: subscription(subscriptionId)
    params: {
      identityPrincipalId: identity.outputs.principalId
      roleDefinitionName: platformOperatorRoleName
    }
    dependsOn: [
      platformOperatorRole
    ]
  }
]

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    eventsQueueName: storage.outputs.eventsQueueName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultUri: keyVault.outputs.uri
    platformSubscriptionId: platformSubscriptionId
    managedSubscriptionIds: join(otherSubscriptionIds, ',')
    maximumInstanceCount: maximumInstanceCount
    hasVmAdminPassword: !empty(vmAdminPassword)
    hasSqlAdminPassword: !empty(sqlAdminPassword)
    scalingMaxCapacity: scalingMaxCapacity
    alertMaxAgeMinutes: alertMaxAgeMinutes
    allowedVnetIds: allowedVnetIds
  }
  // The host must not start before its identity can reach storage and the vault.
  dependsOn: [
    rbac
  ]
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
