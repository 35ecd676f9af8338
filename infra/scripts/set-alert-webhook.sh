#!/bin/sh
# azd post-deploy hook: give the app a function key for Azure Monitor alerts and store the app's
# own /api/alerts URL with that key in Key Vault as ALERT-WEBHOOK-URL (the ALERT_WEBHOOK_URL
# setting references it). Idempotent: an existing key and an up-to-date secret are kept.
# The key never reaches the command line or the output: it goes through a private temp file.
set -eu

: "${AZURE_RESOURCE_GROUP:?run through azd, which sets the provisioning outputs}"
: "${AZURE_FUNCTION_APP_NAME:?run through azd}"
: "${AZURE_KEY_VAULT_NAME:?run through azd}"
: "${SERVICE_API_URI:?run through azd}"

key_name=alertwebhook
secret_name=ALERT-WEBHOOK-URL

umask 077
url_file=$(mktemp)
trap 'rm -f "$url_file"' EXIT

key=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
  --query "functionKeys.$key_name" -o tsv)
if [ -z "$key" ]; then
  echo "Creating the function key '$key_name'"
  key=$(az functionapp keys set -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
    --key-type functionKeys --key-name "$key_name" --query value -o tsv)
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
az functionapp restart -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" -o none
