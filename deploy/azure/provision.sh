#!/usr/bin/env bash
# Create (or bring back in line) everything ml-service needs on Azure App Service: the resource
# group, a Linux plan (Standard tier or above, for slots), the web app on the Python runtime with
# its startup command, app settings, health check, HTTPS only and FTPS off, and a `staging` slot
# configured the same way.
# API keys are on: a Key Vault (RBAC mode) holds a generated key (never printed, never on a
# command line); the web app and the slot read it through a Key Vault reference in the app
# setting ML_SERVICE_API_KEYS, each with its own managed identity holding "Key Vault Secrets
# User" on that vault only.
# Deployment identities (AZURE_DEPLOY_IDENTITIES=true): <app>-deploy-staging may deploy to the
# slot (Website Contributor on the slot, Reader on the site) and <app>-deploy-production may
# swap and route traffic (Website Contributor on the site); both may read the API key secret
# only (for smoke tests). Their federated credentials are made by hand (docs/deploy-azure.md).
# Idempotent: a second run finds everything in place and changes nothing. Signing in needs the
# right to assign roles on the group (Owner, or Contributor + Role Based Access Control
# Administrator). Settings: see common.sh (AZURE_RESOURCE_GROUP, AZURE_APP_NAME, ...).
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SETTINGS=(
    "SCM_DO_BUILD_DURING_DEPLOYMENT=true"
    "ML_SERVICE_MODEL_DIR=$AZURE_MODEL_DIR"
    "ML_SERVICE_LOG_LEVEL=$AZURE_LOG_LEVEL"
)
FX_VERSION=${AZURE_RUNTIME/:/|}
FX_VERSION=${FX_VERSION^^}

case "${AZURE_PLAN_SKU^^}" in
    F1 | D1 | B1 | B2 | B3 | FREE | SHARED | BASIC)
        die "AZURE_PLAN_SKU=$AZURE_PLAN_SKU has no deployment slots; use S1 or above (P1V2, P0V3, ...)" ;;
esac
require_cli "$AZ"

ensure_plan() {
    if az_lookup appservice plan show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_PLAN_NAME" \
        --query "[sku.name, reserved]" --output tsv; then
        local -a fields
        local sku linux
        mapfile -t fields <<<"$AZ_OUT"
        sku=${fields[0]} linux=${fields[1]:-}
        [ "${linux,,}" = true ] || die "plan $AZURE_PLAN_NAME exists but is not a Linux plan; set AZURE_PLAN_NAME to another name"
        if [ "${sku^^}" = "${AZURE_PLAN_SKU^^}" ]; then
            say "plan $AZURE_PLAN_NAME exists (Linux, $sku)"
        else
            say "plan $AZURE_PLAN_NAME is $sku; changing it to $AZURE_PLAN_SKU"
            az_run appservice plan update --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_PLAN_NAME" \
                --sku "$AZURE_PLAN_SKU" --output none
        fi
    else
        say "creating Linux plan $AZURE_PLAN_NAME ($AZURE_PLAN_SKU)"
        az_run appservice plan create --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_PLAN_NAME" \
            --location "$AZURE_LOCATION" --is-linux --sku "$AZURE_PLAN_SKU" --output none
    fi
}

ensure_app() {
    if az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        --query state --output tsv; then
        say "web app $AZURE_APP_NAME exists ($AZ_OUT)"
    else
        say "creating web app $AZURE_APP_NAME ($AZURE_RUNTIME)"
        az_run webapp create --resource-group "$AZURE_RESOURCE_GROUP" --plan "$AZURE_PLAN_NAME" \
            --name "$AZURE_APP_NAME" --runtime "$AZURE_RUNTIME" --startup-file "$AZURE_STARTUP_COMMAND" \
            --https-only true --output none
    fi
}

# ensure_vault: the app's Key Vault, the operator's right to write its secrets, and the API key
# secret (generated when missing). Sets VAULT_ID and VAULT_URI.
ensure_vault() {
    local vault key fields
    vault=$(app_vault_name)
    if az_lookup keyvault show --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" \
        --query "[id, properties.vaultUri]" --output tsv; then
        say "Key Vault $vault exists"
    else
        say "creating Key Vault $vault (RBAC authorization) for the API keys"
        az_run keyvault create --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" --location "$AZURE_LOCATION" \
            --enable-rbac-authorization true --output none
        AZ_OUT=$(az_get keyvault show --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" \
            --query "[id, properties.vaultUri]" --output tsv)
    fi
    mapfile -t fields <<<"$AZ_OUT"
    VAULT_ID=${fields[0]:-} VAULT_URI=${fields[1]:-}
    [ -n "$VAULT_URI" ] || die "Key Vault $vault has no URI"
    operator_principal
    ensure_role "$OPERATOR_ID" "$OPERATOR_TYPE" "Key Vault Secrets Officer" "$VAULT_ID" "you (the operator)"
    az_until_allowed keyvault secret list --vault-name "$vault" \
        --query "[?name=='$AZURE_API_KEY_SECRET'].id" --output tsv
    if [ -n "$AZ_OUT" ]; then
        say "API key secret $AZURE_API_KEY_SECRET exists (kept)"
    else
        say "generating an API key into secret $AZURE_API_KEY_SECRET (through a pipe, never shown)"
        key=$(new_api_key)
        printf '%s' "$key" | az_run keyvault secret set --vault-name "$vault" --name "$AZURE_API_KEY_SECRET" \
            --file /dev/stdin --encoding utf-8 --output none
        unset key
    fi
}

# ensure_site_identity [SLOT]: the system-assigned identity of production or a slot, allowed to
# read the vault's secrets (to resolve the Key Vault reference).
ensure_site_identity() {
    local -a where
    local label=${1:-production} principal
    mapfile -t where < <(slot_args "${1:-}")
    if az_lookup webapp identity show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        "${where[@]}" --query principalId --output tsv; then
        say "$label: managed identity is on"
        principal=$AZ_OUT
    else
        say "$label: turning the managed identity on"
        principal=$(az_get webapp identity assign --resource-group "$AZURE_RESOURCE_GROUP" \
            --name "$AZURE_APP_NAME" "${where[@]}" --query principalId --output tsv)
    fi
    [ -n "$principal" ] || die "$label has no managed identity"
    ensure_role "$principal" ServicePrincipal "Key Vault Secrets User" "$VAULT_ID" "$label"
}

# ensure_deploy_identities: the pipelines' staging and production identities and their roles.
ensure_deploy_identities() {
    local site slot secret staging production
    site=$(az_get webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        --query id --output tsv)
    slot="$site/slots/$AZURE_SLOT"
    secret="$VAULT_ID/secrets/$AZURE_API_KEY_SECRET"
    ensure_identity "$AZURE_DEPLOY_IDENTITY_PREFIX-staging"
    staging=$IDENTITY_CLIENT
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Website Contributor" "$slot" "the staging identity"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal Reader "$site" "the staging identity"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Key Vault Secrets User" "$secret" "the staging identity"
    ensure_identity "$AZURE_DEPLOY_IDENTITY_PREFIX-production"
    production=$IDENTITY_CLIENT
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Website Contributor" "$site" "the production identity"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Key Vault Secrets User" "$secret" "the production identity"
    say "deployment identities: staging client id $staging, production client id $production"
    say "set them as AZURE_CLIENT_ID of the GitHub environments 'staging' and 'production' (or the"
    say "two Azure Pipelines service connections) and add their federated credentials: docs/deploy-azure.md"
}

ensure_slot() {
    local slots
    slots=$(az_get webapp deployment slot list --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_APP_NAME" --query "[].name" --output tsv)
    if grep -qxF "$AZURE_SLOT" <<<"$slots"; then
        say "slot $AZURE_SLOT exists"
    else
        say "creating slot $AZURE_SLOT (configuration cloned from production)"
        az_run webapp deployment slot create --resource-group "$AZURE_RESOURCE_GROUP" \
            --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" --configuration-source "$AZURE_APP_NAME" \
            --output none
    fi
}

# configure_site [SLOT]: runtime, startup command, health check, FTPS, HTTPS only and app
# settings of production (no argument) or of a slot; changes only what differs.
configure_site() {
    local -a where
    local -a fields
    local label=${1:-production} fx cmd health ftps https current missing=() kv
    mapfile -t where < <(slot_args "${1:-}")
    mapfile -t fields < <(az_get webapp config show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        "${where[@]}" --query "[linuxFxVersion, appCommandLine, healthCheckPath, ftpsState]" --output tsv)
    [ "${#fields[@]}" -eq 4 ] || die "unexpected answer from 'az webapp config show' for $label"
    fx=${fields[0]} cmd=${fields[1]} health=${fields[2]} ftps=${fields[3]}
    if [ "${fx^^}" = "$FX_VERSION" ] && [ "$cmd" = "$AZURE_STARTUP_COMMAND" ] &&
        [ "$health" = "$AZURE_HEALTH_PATH" ] && [ "$ftps" = Disabled ]; then
        say "$label: runtime, startup command, health check and FTPS are set"
    else
        say "$label: setting runtime $FX_VERSION, startup command, health check $AZURE_HEALTH_PATH, FTPS off"
        az_run webapp config set --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
            --linux-fx-version "$FX_VERSION" --startup-file "$AZURE_STARTUP_COMMAND" \
            --generic-configurations "{\"healthCheckPath\": \"$AZURE_HEALTH_PATH\"}" --ftps-state Disabled \
            --output none
    fi

    https=$(az_get webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
        --query httpsOnly --output tsv)
    if [ "${https,,}" = true ]; then
        say "$label: HTTPS only is on"
    else
        say "$label: turning HTTPS only on"
        az_run webapp update --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
            --https-only true --output none
    fi

    current=$(az_get webapp config appsettings list --resource-group "$AZURE_RESOURCE_GROUP" \
        --name "$AZURE_APP_NAME" "${where[@]}" --query "[].[name, value]" --output tsv)
    for kv in "${SETTINGS[@]}"; do
        grep -qxF "${kv/=/$'\t'}" <<<"$current" || missing+=("$kv")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say "$label: app settings are set"
    else
        say "$label: setting ${missing[*]}"
        az_run webapp config appsettings set --resource-group "$AZURE_RESOURCE_GROUP" \
            --name "$AZURE_APP_NAME" "${where[@]}" --settings "${missing[@]}" --output none
    fi
}

say "provisioning $AZURE_APP_NAME in resource group $AZURE_RESOURCE_GROUP ($AZURE_LOCATION)"
ensure_group
ensure_plan
ensure_app
ensure_vault
SETTINGS+=("ML_SERVICE_API_KEYS=@Microsoft.KeyVault(SecretUri=${VAULT_URI%/}/secrets/$AZURE_API_KEY_SECRET/)")
ensure_site_identity
configure_site
ensure_slot
ensure_site_identity "$AZURE_SLOT"
configure_site "$AZURE_SLOT"
if [ "$AZURE_DEPLOY_IDENTITIES" = true ]; then
    ensure_deploy_identities
fi
host=$(az_get webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --query defaultHostName --output tsv)
say "done: https://$host (deploy with: make deploy)"
