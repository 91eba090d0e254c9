#!/usr/bin/env bash
# Deploy ml-service to Azure Kubernetes Service, or tear the cluster down.
#
# Usage: deploy/azure/aks.sh deploy     (or `make aks`)
#        deploy/azure/aks.sh teardown   (or `make aks-teardown`)
#
# deploy: creates or reuses the resource group, the container registry and an AKS cluster
# allowed to pull from it; writes the cluster's credentials to a temporary kubeconfig (the
# user's ~/.kube/config is never touched); applies deploy/k8s/overlays/aks with the image
# $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG (built beforehand by acr-build.sh); waits
# for the rollout and the load balancer's address; smoke-tests through it with
# `ml-service predict`. Every step is skipped when already done, so a re-run only re-applies.
# teardown: deletes the cluster and the registry (the resource group is left alone: other
# deployments may share it).
#
# Environment (defaults in brackets; see also deploy/azure/common.sh and acr-build.sh):
#   AZURE_RESOURCE_GROUP [Azuredevops]  AZURE_LOCATION [centralus]  AZURE_ACR_NAME [mlserviceacr]
#   AZURE_AKS_NAME [ml-service-aks]     AZURE_AKS_NODE_SIZE [Standard_D2s_v5]
#   AZURE_AKS_NODE_MIN [2]  AZURE_AKS_NODE_MAX [5]  (cluster autoscaler bounds)
#   AZURE_AKS_VERSION [AKS default]     IMAGE_NAME [ml-service]   IMAGE_TAG [commit short hash]
#   K8S_NAMESPACE [ml-service]  KUBECTL [kubectl]  ML_SERVICE_PREDICT [ml-service]
#   AKS_ROLLOUT_TIMEOUT [300] seconds for the rollout; AKS_ADDRESS_TIMEOUT [300] seconds for
#   the load balancer's public address; AKS_POLL_SECONDS [5] between address checks
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/azure/common.sh
. "$here/common.sh"

: "${AZURE_ACR_NAME:=mlserviceacr}"
: "${AZURE_AKS_NAME:=ml-service-aks}"
: "${AZURE_AKS_NODE_SIZE:=Standard_D2s_v5}"
: "${AZURE_AKS_NODE_MIN:=2}"
: "${AZURE_AKS_NODE_MAX:=5}"
: "${AZURE_AKS_VERSION:=}"
: "${IMAGE_NAME:=ml-service}"
: "${K8S_NAMESPACE:=ml-service}"
: "${KUBECTL:=kubectl}"
: "${AKS_ROLLOUT_TIMEOUT:=300}"
: "${AKS_ADDRESS_TIMEOUT:=300}"
: "${AKS_POLL_SECONDS:=5}"

usage() { echo "usage: $SCRIPT_NAME deploy|teardown" >&2; exit 2; }

# ensure_acr: create the container registry when it does not exist.
ensure_acr() {
    if az_lookup acr show --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv >/dev/null; then
        say "container registry $AZURE_ACR_NAME exists"
    else
        say "creating container registry $AZURE_ACR_NAME"
        az_run acr create --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
            --location "$AZURE_LOCATION" --sku Basic --admin-enabled false --output none
    fi
}

# ensure_cluster: create the AKS cluster attached to the registry, or make sure an existing
# one may pull from it (AcrPull for the kubelet identity), without changing it otherwise.
ensure_cluster() {
    local kubelet acr_id pulls
    if az_lookup aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv >/dev/null; then
        say "AKS cluster $AZURE_AKS_NAME exists"
        kubelet=$(az_get aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
            --query identityProfile.kubeletidentity.objectId --output tsv)
        acr_id=$(az_get acr show --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv)
        pulls=$(az_get role assignment list --assignee "$kubelet" --scope "$acr_id" --role AcrPull \
            --query "[].id" --output tsv)
        if [ -n "$pulls" ]; then
            say "AKS cluster $AZURE_AKS_NAME may pull from $AZURE_ACR_NAME"
        else
            say "attaching container registry $AZURE_ACR_NAME to $AZURE_AKS_NAME"
            az_run aks update --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
                --attach-acr "$AZURE_ACR_NAME" --output none
        fi
    else
        local -a version=()
        [ -z "$AZURE_AKS_VERSION" ] || version=(--kubernetes-version "$AZURE_AKS_VERSION")
        say "creating AKS cluster $AZURE_AKS_NAME ($AZURE_AKS_NODE_MIN-$AZURE_AKS_NODE_MAX x $AZURE_AKS_NODE_SIZE); this takes several minutes"
        az_run aks create --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
            --location "$AZURE_LOCATION" "${version[@]}" \
            --node-vm-size "$AZURE_AKS_NODE_SIZE" --node-count "$AZURE_AKS_NODE_MIN" \
            --enable-cluster-autoscaler --min-count "$AZURE_AKS_NODE_MIN" --max-count "$AZURE_AKS_NODE_MAX" \
            --attach-acr "$AZURE_ACR_NAME" --enable-managed-identity --no-ssh-key \
            --tier free --output none
    fi
}

# wait_for_address: print the load balancer's public address once Azure has assigned it.
wait_for_address() {
    local deadline address
    deadline=$((SECONDS + AKS_ADDRESS_TIMEOUT))
    while :; do
        address=$("$KUBECTL" --namespace "$K8S_NAMESPACE" get service ml-service \
            --output 'jsonpath={.status.loadBalancer.ingress[0].ip}') \
            || die "cannot read service ml-service in namespace $K8S_NAMESPACE"
        if [ -n "$address" ]; then
            printf '%s\n' "$address"
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] \
            || die "service ml-service got no load balancer address within ${AKS_ADDRESS_TIMEOUT}s"
        sleep "$AKS_POLL_SECONDS"
    done
}

deploy() {
    local kubeconfig overlay address
    image_reference
    require_cli "$AZ" "$KUBECTL"

    ensure_group
    ensure_acr
    ensure_cluster

    kubeconfig=$(mktemp "${TMPDIR:-/tmp}/aks-kubeconfig.XXXXXX")
    # kustomize takes only relative paths, so the wrapping overlay lives in the (ignored) build/.
    mkdir -p "$root/build"
    overlay=$(mktemp -d "$root/build/aks-overlay.XXXXXX")
    CLEANUP_PATHS+=("$kubeconfig" "$overlay")
    say "getting credentials of $AZURE_AKS_NAME (temporary kubeconfig)"
    az_get aks get-credentials --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
        --file "$kubeconfig" --overwrite-existing --output none
    export KUBECONFIG="$kubeconfig"

    # The aks overlay as committed, with the registry and tag of this deployment.
    cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../deploy/k8s/overlays/aks
images:
  - name: mlserviceacr.azurecr.io/ml-service
    newName: $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME
    newTag: "$IMAGE_TAG"
YAML
    say "applying deploy/k8s/overlays/aks with $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG"
    "$KUBECTL" apply --kustomize "$overlay"

    say "waiting up to ${AKS_ROLLOUT_TIMEOUT}s for the rollout"
    "$KUBECTL" --namespace "$K8S_NAMESPACE" rollout status deployment/ml-service \
        --timeout "${AKS_ROLLOUT_TIMEOUT}s" \
        || die "deployment ml-service did not become ready; see: kubectl -n $K8S_NAMESPACE describe pods"

    say "waiting up to ${AKS_ADDRESS_TIMEOUT}s for the load balancer's address"
    address=$(wait_for_address)
    say "service answers at http://$address"
    smoke "http://$address" || die "smoke test through http://$address failed"
    say "deployed $IMAGE_NAME:$IMAGE_TAG to $AZURE_AKS_NAME: http://$address"
}

teardown() {
    require_cli "$AZ"
    if az_lookup aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv >/dev/null; then
        say "deleting AKS cluster $AZURE_AKS_NAME; this takes several minutes"
        az_run aks delete --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --yes
    else
        say "AKS cluster $AZURE_AKS_NAME does not exist"
    fi
    if az_lookup acr show --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv >/dev/null; then
        say "deleting container registry $AZURE_ACR_NAME"
        az_run acr delete --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --yes
    else
        say "container registry $AZURE_ACR_NAME does not exist"
    fi
    say "teardown done (resource group $AZURE_RESOURCE_GROUP kept)"
}

[ "$#" -eq 1 ] || usage
case "$1" in
    deploy) deploy ;;
    teardown) teardown ;;
    *) usage ;;
esac
