#!/usr/bin/env bash
# Build the ml-service container image in Azure Container Registry and push it there
# (`az acr build`: the registry's build agents run the Dockerfile, so no local engine is needed).
# Creates the resource group and the registry when they do not exist; a re-run only builds.
#
# Usage: deploy/azure/acr-build.sh            (or `make acr-build`)
# Environment (defaults in brackets; see also deploy/azure/common.sh):
#   AZURE_RESOURCE_GROUP [Azuredevops]   AZURE_LOCATION [centralus]
#   AZURE_ACR_NAME [mlserviceacr]  registry name, globally unique, 5-50 letters and digits
#   AZURE_ACR_SKU [Basic]          IMAGE_NAME [ml-service]
#   IMAGE_TAG [the commit's short hash]  the tag pushed; deploy/azure/aks.sh deploys the same one
#   AZURE_ACR_CREATE [true]  false: only build, for an identity that may push and run builds
#                            (AcrPush, Container Registry Tasks Contributor) but create nothing
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/azure/common.sh
. "$here/common.sh"

: "${AZURE_ACR_SKU:=Basic}"
: "${AZURE_ACR_CREATE:=true}"
image_reference
require_cli "$AZ"

if [ "$AZURE_ACR_CREATE" != true ]; then
    say "using container registry $AZURE_ACR_NAME as it is (AZURE_ACR_CREATE=$AZURE_ACR_CREATE)"
elif ensure_group && az_lookup acr show --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv >/dev/null; then
    say "container registry $AZURE_ACR_NAME exists"
else
    say "creating container registry $AZURE_ACR_NAME ($AZURE_ACR_SKU)"
    az_run acr create --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
        --location "$AZURE_LOCATION" --sku "$AZURE_ACR_SKU" --admin-enabled false --output none
fi

say "building $IMAGE_NAME:$IMAGE_TAG in $AZURE_ACR_NAME from $root"
az_run acr build --registry "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
    --image "$IMAGE_NAME:$IMAGE_TAG" --file "$root/Dockerfile" "$root"
say "pushed $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG"
