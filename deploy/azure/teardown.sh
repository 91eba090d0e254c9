#!/usr/bin/env bash
# Remove what provision.sh created: the web app (with its slots), then its plan when no other
# app uses it, the deployment identities, the Key Vault of the API keys (deleted and purged),
# then the resource group when nothing else is left in it (other resources, such as the build
# agent VM, keep the group alive). Asks for confirmation unless run with --yes.
# Idempotent: with nothing left, it says so and succeeds.
# Usage: teardown.sh [--yes]
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_yes_flag "$@"
require_cli "$AZ"

if ! az_lookup group show --name "$AZURE_RESOURCE_GROUP" --query name --output tsv; then
    say "resource group $AZURE_RESOURCE_GROUP does not exist; nothing to remove"
    exit 0
fi
confirm_removal teardown "web app $AZURE_APP_NAME, its slots and plan" "$AZURE_APP_NAME"

if az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --query name --output tsv; then
    say "deleting web app $AZURE_APP_NAME and its slots"
    az_run webapp delete --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --keep-empty-plan
else
    say "web app $AZURE_APP_NAME is already gone"
fi

if az_lookup appservice plan show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_PLAN_NAME" \
    --query numberOfSites --output tsv; then
    if [ "$AZ_OUT" = 0 ]; then
        say "deleting plan $AZURE_PLAN_NAME"
        az_run appservice plan delete --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_PLAN_NAME" --yes
    else
        say "plan $AZURE_PLAN_NAME still hosts $AZ_OUT app(s); kept"
    fi
else
    say "plan $AZURE_PLAN_NAME is already gone"
fi

for role in staging production; do
    remove "managed identity" "$AZURE_DEPLOY_IDENTITY_PREFIX-$role" identity show -- identity delete
done
remove_vault "$(app_vault_name)" "and the API keys in it"

left=$(az_get resource list --resource-group "$AZURE_RESOURCE_GROUP" --query "length(@)" --output tsv)
if [ "$left" = 0 ]; then
    say "resource group $AZURE_RESOURCE_GROUP is empty; deleting it"
    az_run group delete --name "$AZURE_RESOURCE_GROUP" --yes
else
    say "resource group $AZURE_RESOURCE_GROUP still holds $left other resource(s); kept"
fi
say "done"
