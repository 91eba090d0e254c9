#!/usr/bin/env bash
# Blue-green release to App Service: zip-deploy the package built by `make package` to the
# staging slot, wait (with a deadline) until the slot's readiness probe answers 200, smoke-test
# the slot with `ml-service predict`, then swap it into production and smoke-test production.
# If the staging smoke test fails, production is untouched and the script exits non-zero; if
# production fails after the swap, the swap is reversed. Marks the staging slot so that
# rollback.sh knows it holds the previous release.
# Settings: common.sh, plus ML_SERVICE_PACKAGE (zip to deploy), DEPLOY_READY_TIMEOUT (seconds,
# default 900), DEPLOY_POLL_INTERVAL (seconds, default 10).
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${ML_SERVICE_PACKAGE:=dist/ml-service-app.zip}"
: "${DEPLOY_READY_TIMEOUT:=900}"
: "${DEPLOY_POLL_INTERVAL:=10}"
: "${CURL:=curl}"

[ -f "$ML_SERVICE_PACKAGE" ] || die "package $ML_SERVICE_PACKAGE not found; build it with: make package"
require_cli "$AZ" "$CURL"

az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --query defaultHostName --output tsv ||
    die "web app $AZURE_APP_NAME not found in $AZURE_RESOURCE_GROUP; create it with: make provision"
prod_host=$AZ_OUT
az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --slot "$AZURE_SLOT" --query defaultHostName --output tsv ||
    die "slot $AZURE_SLOT of $AZURE_APP_NAME not found; create it with: make provision"
slot_host=$AZ_OUT

say "deploying $ML_SERVICE_PACKAGE to $AZURE_APP_NAME/$AZURE_SLOT"
az_run webapp deploy --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" \
    --src-path "$ML_SERVICE_PACKAGE" --type zip --output none

# wait_ready HOST: poll https://HOST/health/ready until it answers 200 or the deadline passes.
wait_ready() {
    local url="https://$1$AZURE_HEALTH_PATH" code deadline=$((SECONDS + DEPLOY_READY_TIMEOUT)) attempt=0
    say "waiting up to ${DEPLOY_READY_TIMEOUT}s for $url"
    while :; do
        attempt=$((attempt + 1))
        code=$("$CURL" --silent --output /dev/null --max-time 10 --write-out '%{http_code}' "$url" || true)
        if [ "$code" = 200 ]; then
            say "ready after $attempt probe(s)"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "not ready: last answer '${code:-none}' after $attempt probe(s)"
            return 1
        fi
        sleep "$DEPLOY_POLL_INTERVAL"
    done
}

if ! wait_ready "$slot_host"; then
    die "staging slot never became ready; production untouched (logs: make logs AZURE_LOG_SLOT=$AZURE_SLOT)"
fi
if ! smoke "https://$slot_host"; then
    die "smoke test failed on the staging slot; production untouched"
fi

say "swapping $AZURE_SLOT into production"
az_run webapp deployment slot swap --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --slot "$AZURE_SLOT" --target-slot production --output none
if ! smoke "https://$prod_host"; then
    say "production failed its smoke test after the swap; swapping back"
    az_run webapp deployment slot swap --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        --slot "$AZURE_SLOT" --target-slot production --output none
    die "release rolled back: production runs the previous release again"
fi
az_run webapp update --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" \
    --set tags.mlServiceRollback=available --output none
say "released: https://$prod_host (undo with: make rollback)"
