// The app's user-assigned managed identity: the one credential it uses for storage, Key Vault,
// Application Insights and Azure Resource Manager (AZURE_CLIENT_ID points DefaultAzureCredential at it).

param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
