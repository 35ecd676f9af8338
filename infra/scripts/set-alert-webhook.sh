#!/bin/sh
# azd post-deploy hook: give Azure Monitor a key that opens POST /api/alerts and nothing else, and
# store the app's own /api/alerts URL with that key in Key Vault as ALERT-WEBHOOK-URL (the
# ALERT_WEBHOOK_URL setting references it; it travels into every farm's action group).
#
# The key is a *function* key of the alert function (receive_alert): "allows access only to a
# specific function endpoint". A *host* key (az functionapp keys set --key-type functionKeys,
# what earlier versions of this hook made) "allows access to all function endpoints" - deploy,
# scale, tear down - so the old host key of the same name is deleted. Source: "Work with access
# keys in Azure Functions", https://learn.microsoft.com/azure/azure-functions/function-keys-how-to
#
# It runs after the code is deployed (azd postdeploy): a function's keys exist only once the
# function does. Functions generates the key; the hook reads it back with `function keys list`
# rather than taking it from `keys set`'s answer. Idempotent: an existing key and an up-to-date
# secret are kept. The key never reaches a command line or the output: it goes through a private
# temp file.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd, which sets the provisioning outputs}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"
: "${AZURE_KEY_VAULT_NAME:?run through azd}"
: "${SERVICE_API_URI:?run through azd}"

group=$AZURE_RESOURCE_GROUP
app=$AZURE_FUNCTION_APP_NAME
function_name=receive_alert
key_name=alertwebhook
secret_name=ALERT-WEBHOOK-URL

umask 077
url_file=$(mktemp)
trap 'rm -f "$url_file"' EXIT

read_key() {
  az functionapp function keys list -g "$group" -n "$app" --function-name "$function_name" \
    --query "$key_name" -o tsv
}

if [ -n "$(az functionapp keys list -g "$group" -n "$app" --query "functionKeys.$key_name" -o tsv)" ]; then
  echo "Deleting the host key '$key_name' (a host key opens every route of the app)"
  az functionapp keys delete -g "$group" -n "$app" --key-type functionKeys \
    --key-name "$key_name" -o none
fi

key=$(read_key)
if [ -z "$key" ]; then
  echo "Creating the function key '$key_name' of $function_name"
  az functionapp function keys set -g "$group" -n "$app" --function-name "$function_name" \
    --key-name "$key_name" -o none
  key=$(read_key)
fi
if [ -z "$key" ]; then
  echo "The function key '$key_name' of $function_name could not be read back" >&2
  exit 1
fi
printf '%s/api/alerts?code=%s' "$SERVICE_API_URI" "$key" > "$url_file"

current=$(az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name "$secret_name" \
  --query value -o tsv 2>/dev/null || true)
if [ "$current" = "$(cat "$url_file")" ]; then
  echo "$secret_name is up to date"
  exit 0
fi

echo "Storing $secret_name in $AZURE_KEY_VAULT_NAME"
az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name "$secret_name" \
  --file "$url_file" --encoding utf-8 --content-type text/plain -o none
# Key Vault references are resolved when the app (re)starts.
az functionapp restart -g "$group" -n "$app" -o none
