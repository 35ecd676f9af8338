// The app's Key Vault (RBAC mode): the secrets the app reads through Key Vault references.
// Purge protection stays on because PLATFORM_KEY_SEED cannot be recreated: every existing farm's
// front-ends need the private key derived from it. The VM and SQL admin passwords are optional
// fallbacks for platforms deployed before per-environment secrets (each platform's own vault now
// holds its environments' passwords); they are written only when given.

param name string
param location string
param tags object
param logAnalyticsWorkspaceId string

@secure()
param vmAdminPassword string
@secure()
param sqlAdminPassword string
@secure()
param platformKeySeed string
@secure()
param alertWebhookUrl string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109: Key Vault references are resolved from the Flex Consumption app, which is not VNet-integrated; access is RBAC-only (no access policies) and audited.
  //checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Key Vault secret names allow only letters, digits and dashes, hence dashes for the setting names.
resource vmAdminPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(vmAdminPassword)) {
  //checkov:skip=CKV_AZURE_41: The VMs of older platforms keep using this password; an expiry date would break the app rather than rotate anything.
  //checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: 'VM-ADMIN-PASSWORD'
  properties: {
    value: vmAdminPassword
    contentType: 'text/plain'
  }
}

resource sqlAdminPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(sqlAdminPassword)) {
  //checkov:skip=CKV_AZURE_41: The SQL servers of older platforms keep using this password; an expiry date would break the app rather than rotate anything.
  //checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: 'SQL-ADMIN-PASSWORD'
  properties: {
    value: sqlAdminPassword
    contentType: 'text/plain'
  }
}

resource platformKeySeedSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41: The seed must never change (existing farms depend on the keys derived from it), so it cannot expire.
  parent: vault
  name: 'PLATFORM-KEY-SEED'
  properties: {
    value: platformKeySeed
    contentType: 'text/plain'
  }
}

// Written by Bicep only when given; otherwise the post-deploy hook writes it once the app's
// function key exists (a Flex Consumption host cannot create keys before code is deployed).
resource alertWebhookUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(alertWebhookUrl)) {
  //checkov:skip=CKV_AZURE_41: The URL is valid as long as the function key is; rotate both together instead.
  //checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional resource.
  parent: vault
  name: 'ALERT-WEBHOOK-URL'
  properties: {
    value: alertWebhookUrl
    contentType: 'text/plain'
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
