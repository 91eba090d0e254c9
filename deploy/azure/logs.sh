#!/usr/bin/env bash
# Show the web app's logs: turns on container logging to the file system when it is off, then
# streams the log (Ctrl-C stops), or with LOGS_DOWNLOAD=FILE.zip saves the log archive instead.
# AZURE_LOG_SLOT=staging reads the staging slot.
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${AZURE_LOG_SLOT:=}"
: "${LOGS_DOWNLOAD:=}"
require_cli "$AZ"
mapfile -t where < <(slot_args "$AZURE_LOG_SLOT")
label="$AZURE_APP_NAME${AZURE_LOG_SLOT:+/$AZURE_LOG_SLOT}"

az_lookup webapp log show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
    --query httpLogs.fileSystem.enabled --output tsv ||
    die "web app $label not found in $AZURE_RESOURCE_GROUP"
if [ "${AZ_OUT,,}" = true ]; then
    say "$label: container logging to the file system is on"
else
    say "$label: turning container logging to the file system on"
    az_run webapp log config --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
        --docker-container-logging filesystem --output none
fi
if [ -n "$LOGS_DOWNLOAD" ]; then
    say "$label: saving logs to $LOGS_DOWNLOAD"
    az_run webapp log download --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}" \
        --log-file "$LOGS_DOWNLOAD"
else
    say "$label: streaming logs (Ctrl-C stops)"
    "$AZ" webapp log tail --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" "${where[@]}"
fi
