// The function app: Linux, Python 3.11, on a Flex Consumption (FC1) plan, running as the
// user-assigned identity, with identity-based storage and Key Vault references for secrets.
//
// Why Flex Consumption suits long Durable orchestrations: an orchestration waiting on a durable
// timer (VMs, SQL, gateways and the OutSystems setup take minutes to an hour) is unloaded from
// memory and holds no worker; only the short activity and orchestrator episodes run, each well
// under the host's functionTimeout. So the plan bills execution, not the hour-long wait.

param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param eventsQueueName string
param applicationInsightsName string
param keyVaultUri string
param platformSubscriptionId string
@description('Comma-separated ids; empty when the app manages one subscription.')
param managedSubscriptionIds string
param maximumInstanceCount int
@description('Whether the vault holds the fallback VM-ADMIN-PASSWORD (older platforms only).')
param hasVmAdminPassword bool
@description('Whether the vault holds the fallback SQL-ADMIN-PASSWORD (older platforms only).')
param hasSqlAdminPassword bool
param scalingMaxCapacity int
param alertMaxAgeMinutes int
@description('Comma-separated VNet resource ids; empty allows any.')
param allowedVnetIds string
@description('Memory of one instance (MB); 2048 is the Flex Consumption default.')
param instanceMemoryMB int = 2048

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// A versionless SecretUri: the platform re-reads the latest version, so rotating a secret in the
// vault reaches the app without redeploying.
var keyVaultReference = '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/'

// Every setting the code reads (see appsettings.py and the README's configuration table). On Flex
// Consumption the worker runtime and its version live in functionAppConfig.runtime, which is why
// FUNCTIONS_WORKER_RUNTIME (local only) is not an app setting here.
var appSettings = {
  // The host, the Durable task hub and the events queue all use this identity-based connection.
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // DefaultAzureCredential picks the user-assigned identity through this.
  AZURE_CLIENT_ID: identityClientId
  AZURE_SUBSCRIPTION_ID: platformSubscriptionId
  MANAGED_SUBSCRIPTION_IDS: managedSubscriptionIds
  // Optional fallbacks: empty unless the vault holds them (a reference to a missing secret would
  // reach the app as the literal reference text).
  VM_ADMIN_PASSWORD: hasVmAdminPassword ? '${keyVaultReference}VM-ADMIN-PASSWORD)' : ''
  SQL_ADMIN_PASSWORD: hasSqlAdminPassword ? '${keyVaultReference}SQL-ADMIN-PASSWORD)' : ''
  PLATFORM_KEY_SEED: '${keyVaultReference}PLATFORM-KEY-SEED)'
  ALERT_WEBHOOK_URL: '${keyVaultReference}ALERT-WEBHOOK-URL)'
  PLATFORM_EVENTS_QUEUE: eventsQueueName
  SCALING_TIMER_SCHEDULE: '0 */1 * * * *'
  DRIFT_SCHEDULE: '0 0 */6 * * *'
  SCALING_COOLDOWN_SCALE: '1'
  SCALING_MAX_CAPACITY: string(scalingMaxCapacity)
  ALERT_MAX_AGE_MINUTES: string(alertMaxAgeMinutes)
  ALLOWED_VNET_IDS: allowedVnetIds
  OPERATION_POLL_SECONDS: '15'
  OPERATION_TIMEOUT_SCALE: '1'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225: Zone redundancy of Flex Consumption exists only in some regions; losing a zone loses no work, because Durable orchestrations resume from their history on another instance.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222: The API must be reachable by Azure Monitor action-group webhooks and by operators; every route needs a function key (docs/api.md) and the app holds no data of its own.
  //checkov:skip=CKV_AZURE_213: Health check is an App Service plan feature that Flex Consumption does not offer; the platform replaces unhealthy instances itself.
  //checkov:skip=CKV_AZURE_17: Client certificates cannot be presented by Azure Monitor action-group webhooks.
  //checkov:skip=CKV_AZURE_212: Flex Consumption scales out by itself (maximumInstanceCount); instance-count redundancy settings do not apply.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  resource settings 'config' = {
    name: 'appsettings'
    properties: appSettings
  }

  // No publishing passwords: azd deploys with an Entra token.
  resource ftpCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: {
      allow: false
    }
  }

  resource scmCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: {
      allow: false
    }
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
