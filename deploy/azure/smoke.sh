#!/usr/bin/env bash
# Smoke-test the live service: with a URL argument (or SMOKE_URL), send the sample request to
# it (with ML_SERVICE_API_KEY when set); otherwise find the web app's host name, check that it is
# running (starting it when it is stopped, as the original script did), read its API key from
# Key Vault and send the sample request over HTTPS with it. The client, `ml-service predict`,
# retries with backoff and exits non-zero on any failure, and so does this.
# Usage: smoke.sh [URL]
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

url=${1:-${SMOKE_URL:-}}
if [ -z "$url" ]; then
    require_cli "$AZ"
    az_lookup webapp show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" \
        --query "[defaultHostName, state]" --output tsv ||
        die "web app $AZURE_APP_NAME not found in $AZURE_RESOURCE_GROUP; create it with: make provision"
    { read -r host; read -r state; } <<<"$AZ_OUT"
    [ -n "$host" ] || die "web app $AZURE_APP_NAME has no host name"
    case "$state" in
        Running) say "$AZURE_APP_NAME is running at $host" ;;
        Stopped)
            say "$AZURE_APP_NAME is stopped; starting it"
            az_run webapp start --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_APP_NAME" --output none
            ;;
        *) die "web app $AZURE_APP_NAME is in state '$state'; expected Running" ;;
    esac
    url="https://$host"
    read_api_key
else
    API_KEY=${ML_SERVICE_API_KEY:-}
fi
case "$url" in
    http://127.0.0.1* | http://localhost* | https://*) ;;
    *) die "refusing '$url': use an https:// URL (plain http only for localhost)" ;;
esac
smoke "$url" || die "smoke test failed against $url"
say "smoke test passed: $url"
