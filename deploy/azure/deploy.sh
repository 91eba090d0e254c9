#!/usr/bin/env bash
# Blue-green release to App Service, optionally gated on the model and through a canary.
#
# Usage: deploy.sh [--phase all|staging|production] [--compare] [--canary PERCENT]
#                  [--canary-seconds SECONDS]
#
# staging phase (the staging identity may do all of it):
#   1. with --compare (PROMOTION_COMPARE=true): `ml-service compare` scores the model inside the
#      package (the challenger) against the one production serves (the champion). When the
#      champion stays, the release ends here, successfully unless PROMOTION_FAIL_ON_KEEP=true,
#      and the job summary says why;
#   2. zip-deploy the package built by `make package` to the staging slot, wait (with a
#      deadline) until the slot's readiness probe answers 200, smoke-test the slot with
#      `ml-service predict` and the API key read from Key Vault.
# production phase (the production identity):
#   3. with --canary N: route N % of production's traffic to the slot
#      (`az webapp traffic-routing set`), watch the slot's /metrics with `ml-service watch` for
#      --canary-seconds; unhealthy: clear the routing (all traffic back on production) and fail;
#   4. clear the routing, swap the slot into production and smoke-test production; if that
#      fails, the swap is reversed. Marks the slot so that rollback.sh knows it holds the
#      previous release.
# `all` (the default) runs both phases. A failed staging smoke test leaves production untouched.
# Each step is logged and summed up in the job summary (GitHub Actions, Azure Pipelines); the
# decision (promote or keep) is a step output named `decision`.
# Settings: common.sh (CANARY_*, PROMOTION_*), plus ML_SERVICE_PACKAGE (zip to deploy),
# DEPLOY_READY_TIMEOUT (seconds, default 900), DEPLOY_POLL_INTERVAL (seconds, default 10).
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${ML_SERVICE_PACKAGE:=dist/ml-service-app.zip}"
: "${DEPLOY_READY_TIMEOUT:=900}"
: "${DEPLOY_POLL_INTERVAL:=10}"
: "${CURL:=curl}"

phase=all
parse_promotion_flags "$@"
set -- "${ARGS_LEFT[@]}"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --phase)
            [ "$#" -ge 2 ] || die "--phase needs a value"
            phase=$2
            shift
            ;;
        *) die "usage: $SCRIPT_NAME [--phase all|staging|production] [--compare] [--canary PERCENT] [--canary-seconds SECONDS]" ;;
    esac
    shift
done
case "$phase" in all | staging | production) ;; *) die "--phase is all, staging or production, not '$phase'" ;; esac

if [ "$phase" != production ]; then
    [ -f "$ML_SERVICE_PACKAGE" ] || die "package $ML_SERVICE_PACKAGE not found; build it with: make package"
fi
require_cli "$AZ" "$CURL"

az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --query defaultHostName --output tsv ||
    die "web app $AZURE_APP_NAME not found in $AZURE_RESOURCE_GROUP; create it with: make provision"
prod_host=$AZ_OUT
az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
    --slot "$AZURE_SLOT" --query defaultHostName --output tsv ||
    die "slot $AZURE_SLOT of $AZURE_APP_NAME not found; create it with: make provision"
slot_host=$AZ_OUT
read_api_key

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

# compare_with_production: the package's model against production's; ends the release when
# the champion stays.
compare_with_production() {
    local unpacked status=0
    unpacked=$(mktemp -d "${TMPDIR:-/tmp}/ml-service-package.XXXXXX")
    CLEANUP_PATHS+=("$unpacked")
    python3 -m zipfile -e "$ML_SERVICE_PACKAGE" "$unpacked"
    [ -f "$unpacked/$AZURE_MODEL_DIR/manifest.json" ] || die "$ML_SERVICE_PACKAGE has no model at $AZURE_MODEL_DIR"
    compare_models "url:https://$prod_host" "$unpacked/$AZURE_MODEL_DIR" || status=$?
    case "$status" in
        0) summary "The challenger wins: releasing it." ;;
        3) keep_champion "the model production serves is at least as good (ml-service compare)" ;;
        *) die "could not compare the models (ml-service compare exited $status); nothing deployed" ;;
    esac
}

release_to_staging() {
    [ "$PROMOTION_COMPARE" = false ] || compare_with_production
    say "deploying $ML_SERVICE_PACKAGE to $AZURE_APP_NAME/$AZURE_SLOT"
    az_run webapp deploy --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" \
        --src-path "$ML_SERVICE_PACKAGE" --type zip --output none
    if ! wait_ready "$slot_host"; then
        die "staging slot never became ready; production untouched (logs: make logs AZURE_LOG_SLOT=$AZURE_SLOT)"
    fi
    if ! smoke "https://$slot_host"; then
        die "smoke test failed on the staging slot; production untouched"
    fi
    summary "Deployed to the $AZURE_SLOT slot and smoke-tested: https://$slot_host"
    pipeline_output decision promote
}

# route_to_slot PERCENT: send PERCENT of production's traffic to the slot (0 clears the routing).
route_to_slot() {
    if [ "$1" = 0 ]; then
        say "routing all of production's traffic to production"
        az_run webapp traffic-routing clear --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
            --output none
    else
        say "routing $1% of production's traffic to $AZURE_SLOT"
        az_run webapp traffic-routing set --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
            --distribution "$AZURE_SLOT=$1" --output none
    fi
}

release_to_production() {
    if [ "$CANARY_PERCENT" != 0 ]; then
        route_to_slot "$CANARY_PERCENT"
        if ! watch_canary "https://$slot_host"; then
            route_to_slot 0
            summary "**Rolled back**: production serves the previous release only."
            die "canary unhealthy ($CANARY_VERDICT); rolled back, production untouched"
        fi
        route_to_slot 0
    fi
    say "swapping $AZURE_SLOT into production"
    az_run webapp deployment slot swap --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        --slot "$AZURE_SLOT" --target-slot production --output none
    if ! smoke "https://$prod_host"; then
        say "production failed its smoke test after the swap; swapping back"
        az_run webapp deployment slot swap --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
            --slot "$AZURE_SLOT" --target-slot production --output none
        summary "**Rolled back**: production failed its smoke test after the swap."
        die "release rolled back: production runs the previous release again"
    fi
    az_run webapp update --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --slot "$AZURE_SLOT" \
        --set tags.mlServiceRollback=available --output none
    summary "**Promoted**: https://$prod_host serves the release (undo with: make rollback)."
    say "released: https://$prod_host (undo with: make rollback)"
}

[ "$phase" = production ] || release_to_staging
[ "$phase" = staging ] || release_to_production
