<#
.SYNOPSIS
azd post-deploy hook (Windows): store the app's own /api/alerts URL, with a dedicated function
key, in Key Vault as ALERT-WEBHOOK-URL. Same steps as set-alert-webhook.sh; idempotent. The key
never reaches a command line or the output: it goes through a private temp file.
#>
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_KEY_VAULT_NAME', 'SERVICE_API_URI') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        throw "$name is not set: run this through azd, which sets the provisioning outputs."
    }
}
$resourceGroup = $env:AZURE_RESOURCE_GROUP
$appName = $env:AZURE_FUNCTION_APP_NAME
$vaultName = $env:AZURE_KEY_VAULT_NAME
$keyName = 'alertwebhook'
$secretName = 'ALERT-WEBHOOK-URL'

$key = az functionapp keys list -g $resourceGroup -n $appName --query "functionKeys.$keyName" -o tsv
if ($LASTEXITCODE -ne 0) { throw 'Listing the function keys failed.' }
if (-not $key) {
    Write-Host "Creating the function key '$keyName'"
    $key = az functionapp keys set -g $resourceGroup -n $appName --key-type functionKeys --key-name $keyName --query value -o tsv
    if ($LASTEXITCODE -ne 0) { throw 'Creating the function key failed.' }
}
$url = "$($env:SERVICE_API_URI)/api/alerts?code=$key"

$current = az keyvault secret show --vault-name $vaultName --name $secretName --query value -o tsv 2>$null
if ($current -eq $url) {
    Write-Host "$secretName is up to date"
    exit 0
}

$urlFile = New-TemporaryFile
try {
    [System.IO.File]::WriteAllText($urlFile.FullName, $url)
    Write-Host "Storing $secretName in $vaultName"
    az keyvault secret set --vault-name $vaultName --name $secretName --file $urlFile.FullName --encoding utf-8 --content-type text/plain -o none
    if ($LASTEXITCODE -ne 0) { throw 'Storing the secret failed.' }
}
finally {
    Remove-Item -LiteralPath $urlFile.FullName -Force
}
# Key Vault references are resolved when the app (re)starts.
az functionapp restart -g $resourceGroup -n $appName -o none
if ($LASTEXITCODE -ne 0) { throw 'Restarting the app failed.' }
