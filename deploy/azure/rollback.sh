#!/usr/bin/env bash
# Undo the last release: swap the staging slot (which holds the previous release after
# deploy.sh) back into production, then smoke-test production with the API key from Key Vault.
# deploy.sh tags the staging slot `mlServiceRollback=available`; this script swaps only then and
# tags it `used` afterwards, so a second run changes nothing (it would otherwise swap the bad
# release back in).
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_cli "$AZ"
az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --query defaultHostName --output tsv ||
    die "web app $AZURE_APP_NAME not found in $AZURE_RESOURCE_GROUP"
prod_host=$AZ_OUT
az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --slot "$AZURE_SLOT" --query tags.mlServiceRollback --output tsv ||
    AZ_OUT=
if [ "$AZ_OUT" != available ]; then
    say "nothing to roll back: no release has been deployed since the last rollback"
    exit 0
fi

say "swapping production back with $AZURE_SLOT (the previous release)"
az_run webapp deployment slot swap --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --slot "$AZURE_SLOT" --target-slot production --output none
az_run webapp update --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" \
    --set tags.mlServiceRollback=used --output none
read_api_key
smoke "https://$prod_host" || die "production runs the previous release but fails its smoke test"
say "rolled back: https://$prod_host"
