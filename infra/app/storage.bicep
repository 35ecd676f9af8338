// The host's storage account: Functions host state, the Durable task hub (queues, tables, blobs),
// the Flex Consumption deployment package and the CloudEvents queue. Identity only: shared keys
// are disabled, so no connection string with a key exists anywhere.

param name string
param location string
param tags object
param deploymentContainerName string
param eventsQueueName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_206: LRS on purpose: the task hub and the events queue hold transient operational state; platforms' state of record is ARM itself (design decision 7), so geo-replication buys nothing.
  //checkov:skip=CKV_AZURE_35: The Flex Consumption app is not VNet-integrated, so the account must accept public traffic; every request still needs an Entra token (shared keys are disabled).
  //checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public endpoint, Entra-only authentication.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource queueService 'queueServices' = {
    name: 'default'

    resource eventsQueue 'queues' = {
      name: eventsQueueName
    }
  }
}

output name string = storage.name
output eventsQueueName string = storage::queueService::eventsQueue.name
