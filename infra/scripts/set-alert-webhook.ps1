<#
.SYNOPSIS
azd post-deploy hook (Windows): give Azure Monitor a key that opens POST /api/alerts and nothing
else, and store the app's own /api/alerts URL with that key in Key Vault as ALERT-WEBHOOK-URL.
Same steps as set-alert-webhook.sh; idempotent.

.DESCRIPTION
The key is a function key of the alert function (receive_alert), which opens that function's
endpoint only; a host key (what earlier versions of this hook made, with the same name) opens
every route, so it is deleted. See "Work with access keys in Azure Functions",
https://learn.microsoft.com/azure/azure-functions/function-keys-how-to. The hook runs after the
code is deployed (a function's keys exist only once the function does); Functions generates the
key and the hook reads it back with 'function keys list'. The key never reaches a command line
or the output: it goes through a private temp file.
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
$functionName = 'receive_alert'
$keyName = 'alertwebhook'
$secretName = 'ALERT-WEBHOOK-URL'

function Read-FunctionKey {
    $value = az functionapp function keys list -g $resourceGroup -n $appName --function-name $functionName --query $keyName -o tsv
    if ($LASTEXITCODE -ne 0) { throw "Listing the keys of $functionName failed (is the code deployed?)." }
    return $value
}

$hostKey = az functionapp keys list -g $resourceGroup -n $appName --query "functionKeys.$keyName" -o tsv
if ($LASTEXITCODE -ne 0) { throw 'Listing the host keys failed.' }
if ($hostKey) {
    Write-Host "Deleting the host key '$keyName' (a host key opens every route of the app)"
    az functionapp keys delete -g $resourceGroup -n $appName --key-type functionKeys --key-name $keyName -o none
    if ($LASTEXITCODE -ne 0) { throw 'Deleting the host key failed.' }
}

$key = Read-FunctionKey
if (-not $key) {
    Write-Host "Creating the function key '$keyName' of $functionName"
    az functionapp function keys set -g $resourceGroup -n $appName --function-name $functionName --key-name $keyName -o none
    if ($LASTEXITCODE -ne 0) { throw 'Creating the function key failed.' }
    $key = Read-FunctionKey
}
if (-not $key) { throw "The function key '$keyName' of $functionName could not be read back." }
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
