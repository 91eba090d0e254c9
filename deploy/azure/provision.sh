#!/usr/bin/env bash
# Create (or bring back in line) everything ml-service needs on Azure App Service: the resource
# group, a Linux plan (Standard tier or above, for slots), the web app on the Python runtime with
# its startup command, app settings, health check, HTTPS only and FTPS off, and a `staging` slot
# configured the same way. Idempotent: a second run finds everything in place and changes nothing.
# Settings: see common.sh (AZURE_RESOURCE_GROUP, AZURE_APP_NAME, AZURE_PLAN_SKU, ...).
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
configure_site
ensure_slot
configure_site "$AZURE_SLOT"
host=$(az_get webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --query defaultHostName --output tsv)
say "done: https://$host (deploy with: make deploy)"
