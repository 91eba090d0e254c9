#!/usr/bin/env bash
# Deploy ml-service to Azure Kubernetes Service, or tear the cluster down.
#
# Usage: deploy/azure/aks.sh deploy    [FLAGS]  (`make aks`: provision, then release)
#        deploy/azure/aks.sh provision          (`make aks-provision`)
#        deploy/azure/aks.sh release   [FLAGS]  (`make aks-release`: what aks.yml runs)
#        deploy/azure/aks.sh teardown           (`make aks-teardown`)
# FLAGS: --canary PERCENT --canary-seconds SECONDS --compare (see common.sh, docs/promotion.md)
#
# provision (an operator allowed to create resources and assign roles): creates or reuses the
# resource group, the container registry and an AKS cluster allowed to pull from it, with
# network policy enforced (AZURE_AKS_NETWORK_POLICY), Microsoft Entra sign-in and Azure RBAC for
# Kubernetes (no local accounts); gives the operator RBAC Cluster Admin on it; creates the
# namespace; and, with AZURE_DEPLOY_IDENTITIES=true, the pipeline's identity AKS_DEPLOY_IDENTITY
# with only: AcrPush and Container Registry Tasks Contributor on the registry (`az acr build`),
# Cluster User on the cluster and RBAC Writer on the namespace.
# release (that identity is enough): writes the cluster's credentials to a temporary
# kubeconfig (the user's ~/.kube/config is never touched; kubelogin signs in with the Azure
# CLI's login); creates the API key Secret when it is missing (a generated key, never on a
# command line or in a log); applies deploy/k8s/overlays/aks with the image
# $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG (built beforehand by acr-build.sh); waits
# for the rollout and the load balancer's address; smoke-tests through it with
# `ml-service predict` and the key read from the Secret.
# With --canary N, a release that changes the image of a running service goes through a
# canary first: the Deployment ml-service-canary (deploy/k8s/canary) runs the new image behind
# the same Service with the replicas that give it about N % of the pods, is smoke-tested and
# watched (`ml-service watch` through a port-forward) for --canary-seconds; healthy, the
# stable Deployment takes the new image and the canary is deleted; unhealthy, the canary is
# deleted and the release fails with production unchanged. With --compare, the model in
# AKS_CHALLENGER is first compared with the one the service serves; a kept champion ends the
# release (successfully unless PROMOTION_FAIL_ON_KEEP=true).
# Every step is skipped when already done, so a re-run only re-applies.
# teardown: deletes the cluster, the registry and the deployment identity (the resource group is
# left alone: other deployments may share it).
#
# Environment (defaults in brackets; see also deploy/azure/common.sh and acr-build.sh):
#   AZURE_RESOURCE_GROUP [Azuredevops]  AZURE_LOCATION [centralus]  AZURE_ACR_NAME [mlserviceacr]
#   AZURE_AKS_NAME [ml-service-aks]     AZURE_AKS_NODE_SIZE [Standard_D2s_v5]
#   AZURE_AKS_NODE_MIN [2]  AZURE_AKS_NODE_MAX [5]  (cluster autoscaler bounds)
#   AZURE_AKS_VERSION [AKS default]     AZURE_AKS_NETWORK_POLICY [calico] (azure, calico, cilium)
#   IMAGE_NAME [ml-service]   IMAGE_TAG [commit short hash]
#   K8S_NAMESPACE [ml-service]  KUBECTL [kubectl]  KUBELOGIN [kubelogin]  ML_SERVICE_PREDICT [ml-service]
#   AKS_DEPLOY_IDENTITY [ml-service-deploy-aks]  AKS_CHALLENGER [models/housing]
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
: "${AZURE_AKS_NETWORK_POLICY:=calico}"
: "${KUBELOGIN:=kubelogin}"
: "${AKS_DEPLOY_IDENTITY:=ml-service-deploy-aks}"
: "${AKS_CHALLENGER:=$root/models/housing}"
: "${AKS_PORT_FORWARD_TIMEOUT:=30}"
K8S_SECRET=ml-service-api-keys
CANARY_SELECTOR=app.kubernetes.io/track=canary

usage() { echo "usage: $SCRIPT_NAME deploy|provision|release|teardown [--canary PERCENT] [--canary-seconds SECONDS] [--compare]" >&2; exit 2; }
kube() { "$KUBECTL" --namespace "$K8S_NAMESPACE" "$@"; }

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

# ensure_cluster: create the AKS cluster attached to the registry, with network policy and
# Azure RBAC; or make sure an existing one may pull from it (AcrPull for the kubelet identity)
# and enforces both, without changing it otherwise.
ensure_cluster() {
    local kubelet acr_id pulls
    local -a fields
    if az_lookup aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
        --query "[networkProfile.networkPolicy, aadProfile.enableAzureRbac]" --output tsv; then
        say "AKS cluster $AZURE_AKS_NAME exists"
        mapfile -t fields <<<"$AZ_OUT"
        if [ "${fields[0]:-none}" = none ] || [ "${fields[0]:-}" = None ]; then
            say "AKS cluster $AZURE_AKS_NAME enforces no network policy; enabling $AZURE_AKS_NETWORK_POLICY"
            az_run aks update --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
                --network-policy "$AZURE_AKS_NETWORK_POLICY" --output none
        else
            say "AKS cluster $AZURE_AKS_NAME enforces network policy (${fields[0]})"
        fi
        if [ "${fields[1],,}" = true ]; then
            say "AKS cluster $AZURE_AKS_NAME authorizes with Azure RBAC"
        else
            say "turning on Microsoft Entra sign-in and Azure RBAC on $AZURE_AKS_NAME"
            az_run aks update --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
                --enable-aad --enable-azure-rbac --output none
        fi
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
            --network-plugin azure --network-plugin-mode overlay --network-policy "$AZURE_AKS_NETWORK_POLICY" \
            --enable-aad --enable-azure-rbac --disable-local-accounts \
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

# connect: the cluster's user credentials in a temporary kubeconfig (KUBECONFIG), signed in
# through the Azure CLI's login (kubelogin), so the caller's Azure roles decide what it may do.
connect() {
    local kubeconfig
    kubeconfig=$(mktemp "${TMPDIR:-/tmp}/aks-kubeconfig.XXXXXX")
    CLEANUP_PATHS+=("$kubeconfig")
    say "getting credentials of $AZURE_AKS_NAME (temporary kubeconfig)"
    az_get aks get-credentials --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" \
        --file "$kubeconfig" --overwrite-existing --output none
    "$KUBELOGIN" convert-kubeconfig --login azurecli --kubeconfig "$kubeconfig"
    export KUBECONFIG="$kubeconfig"
}

# ensure_deploy_identity: the pipeline's identity and its roles on the registry and cluster.
ensure_deploy_identity() {
    local acr_id cluster_id
    acr_id=$(az_get acr show --name "$AZURE_ACR_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv)
    cluster_id=$(az_get aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv)
    ensure_identity "$AKS_DEPLOY_IDENTITY"
    local who="the AKS deployment identity"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal AcrPush "$acr_id" "$who"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Container Registry Tasks Contributor" "$acr_id" "$who"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Azure Kubernetes Service Cluster User Role" "$cluster_id" "$who"
    ensure_role "$IDENTITY_PRINCIPAL" ServicePrincipal "Azure Kubernetes Service RBAC Writer" \
        "$cluster_id/namespaces/$K8S_NAMESPACE" "$who"
    say "AKS deployment identity: client id $IDENTITY_CLIENT; set it as AZURE_CLIENT_ID of the GitHub"
    say "environment 'aks' and add its federated credential: docs/kubernetes.md"
}

provision() {
    local cluster_id
    require_cli "$AZ" "$KUBECTL" "$KUBELOGIN"
    ensure_group
    ensure_acr
    ensure_cluster
    cluster_id=$(az_get aks show --name "$AZURE_AKS_NAME" --resource-group "$AZURE_RESOURCE_GROUP" --query id --output tsv)
    operator_principal
    ensure_role "$OPERATOR_ID" "$OPERATOR_TYPE" "Azure Kubernetes Service RBAC Cluster Admin" "$cluster_id" \
        "you (the operator)"
    connect
    say "creating namespace $K8S_NAMESPACE (if missing)"
    "$KUBECTL" apply --filename "$root/deploy/k8s/overlays/aks/namespace.yaml"
    if [ "$AZURE_DEPLOY_IDENTITIES" = true ]; then
        ensure_deploy_identity
    fi
}

# ensure_api_key_secret: the Secret the pods read their API keys from; a generated key when it
# is missing (written through stdin, so it is on no command line; `create`, so no
# last-applied annotation keeps a copy). Then the first key, read back, in API_KEY.
ensure_api_key_secret() {
    local key
    if [ -n "$(kube get secret "$K8S_SECRET" --ignore-not-found --output name)" ]; then
        say "Secret $K8S_SECRET exists (kept)"
    else
        say "creating Secret $K8S_SECRET with a generated API key (never shown)"
        key=$(new_api_key)
        printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\nstringData:\n  keys: %s\n' \
            "$K8S_SECRET" "$K8S_NAMESPACE" "$key" | "$KUBECTL" create --filename -
        unset key
    fi
    say "reading the API key for the smoke test from Secret $K8S_SECRET"
    key=$(kube get secret "$K8S_SECRET" --output 'jsonpath={.data.keys}' | base64 --decode)
    API_KEY=$(first_key "$key")
    unset key
    [ -n "$API_KEY" ] || die "Secret $K8S_SECRET holds no key"
}

# apply_overlay DIR [REPLICAS]: apply a kustomization of deploy/k8s (overlays/aks or canary)
# with this release's image and without the namespace (the release's identity may not change
# it), through a wrapping kustomization in the (ignored) build/: kustomize takes relative paths.
apply_overlay() {
    local overlay
    mkdir -p "$root/build"
    overlay=$(mktemp -d "$root/build/aks-overlay.XXXXXX")
    CLEANUP_PATHS+=("$overlay")
    cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../deploy/k8s/$1
images:
  - name: mlserviceacr.azurecr.io/ml-service
    newName: $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME
    newTag: "$IMAGE_TAG"
YAML
    if [ -n "${2:-}" ]; then
        printf 'replicas:\n  - name: ml-service-canary\n    count: %s\n' "$2" >>"$overlay/kustomization.yaml"
    fi
    if [ "$1" != canary ]; then
        # shellcheck disable=SC2016 # $patch is kustomize's word, not a shell variable
        printf 'patches:\n  - patch: |-\n      $patch: delete\n      apiVersion: v1\n      kind: Namespace\n      metadata:\n        name: %s\n' \
            "$K8S_NAMESPACE" >>"$overlay/kustomization.yaml"
    fi
    say "applying deploy/k8s/$1 with $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG"
    "$KUBECTL" apply --kustomize "$overlay"
}

# rollout NAME: wait for deployment NAME to be ready.
rollout() {
    say "waiting up to ${AKS_ROLLOUT_TIMEOUT}s for the rollout of $1"
    kube rollout status "deployment/$1" --timeout "${AKS_ROLLOUT_TIMEOUT}s" ||
        return 1
}

# port_forward: forward a free local port to the canary's pods; the URL in CANARY_URL.
port_forward() {
    local log port deadline=$((SECONDS + AKS_PORT_FORWARD_TIMEOUT))
    log=$(mktemp "${TMPDIR:-/tmp}/aks-port-forward.XXXXXX")
    CLEANUP_PATHS+=("$log")
    kube port-forward deployment/ml-service-canary :http >"$log" 2>&1 &
    CLEANUP_PIDS+=("$!")
    while :; do
        port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log" | head -n 1)
        [ -z "$port" ] || break
        [ "$SECONDS" -lt "$deadline" ] || die "no port-forward to the canary within ${AKS_PORT_FORWARD_TIMEOUT}s: $(cat "$log")"
        sleep 0.2
    done
    CANARY_URL="http://127.0.0.1:$port"
    say "the canary answers at $CANARY_URL (port-forward)"
}

# remove_canary: delete the canary Deployment and its settings.
remove_canary() {
    say "deleting the canary"
    kube delete deployment,configmap --selector "$CANARY_SELECTOR" --ignore-not-found
}

# canary STABLE_REPLICAS: run the new image beside the stable pods, watch it, then promote it
# (return 0) or remove it (fail).
canary() {
    local stable=$1 replicas
    replicas=$(((CANARY_PERCENT * stable + 99 - CANARY_PERCENT) / (100 - CANARY_PERCENT)))
    [ "$replicas" -ge 1 ] || replicas=1
    say "canary: $replicas pod(s) beside $stable stable pod(s), $((100 * replicas / (replicas + stable)))% of the traffic"
    apply_overlay canary "$replicas"
    if ! rollout ml-service-canary; then
        remove_canary
        summary "**Rolled back**: the canary never became ready."
        die "the canary did not become ready; removed it, production unchanged"
    fi
    port_forward
    if ! smoke "$CANARY_URL" || ! watch_canary "$CANARY_URL"; then
        remove_canary
        summary "**Rolled back**: production serves the previous image only."
        die "canary unhealthy (${CANARY_VERDICT:-its smoke test failed}); removed it, production unchanged"
    fi
    summary "Canary healthy: promoting $IMAGE_NAME:$IMAGE_TAG."
}

release() {
    local address stable_image stable_replicas
    image_reference
    require_cli "$AZ" "$KUBECTL" "$KUBELOGIN"
    connect
    ensure_api_key_secret
    stable_image=$(kube get deployment ml-service --ignore-not-found \
        --output 'jsonpath={.spec.template.spec.containers[0].image}')
    if [ -n "$stable_image" ] && [ "$PROMOTION_COMPARE" = true ]; then
        address=$(wait_for_address)
        local status=0
        compare_models "url:http://$address" "$AKS_CHALLENGER" || status=$?
        case "$status" in
            0) summary "The challenger wins: releasing it." ;;
            3) keep_champion "the model the service serves is at least as good (ml-service compare)" ;;
            *) die "could not compare the models (ml-service compare exited $status); nothing deployed" ;;
        esac
    fi
    if [ "$CANARY_PERCENT" != 0 ] && [ -n "$stable_image" ] &&
        [ "$stable_image" != "$AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG" ]; then
        stable_replicas=$(kube get deployment ml-service --output 'jsonpath={.spec.replicas}')
        canary "${stable_replicas:-1}"
    elif [ "$CANARY_PERCENT" != 0 ]; then
        say "no canary: ${stable_image:+the service already runs this image}${stable_image:-nothing runs yet}"
    fi
    apply_overlay overlays/aks
    rollout ml-service ||
        die "deployment ml-service did not become ready; see: kubectl -n $K8S_NAMESPACE describe pods"
    [ "$CANARY_PERCENT" = 0 ] || remove_canary

    say "waiting up to ${AKS_ADDRESS_TIMEOUT}s for the load balancer's address"
    address=$(wait_for_address)
    say "service answers at http://$address"
    smoke "http://$address" || die "smoke test through http://$address failed"
    summary "**Released** $IMAGE_NAME:$IMAGE_TAG to $AZURE_AKS_NAME: http://$address"
    pipeline_output decision promote
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
    remove "managed identity" "$AKS_DEPLOY_IDENTITY" identity show -- identity delete
    say "teardown done (resource group $AZURE_RESOURCE_GROUP kept)"
}

[ "$#" -ge 1 ] || usage
command=$1
shift
parse_promotion_flags "$@"
[ "${#ARGS_LEFT[@]}" -eq 0 ] || usage
case "$command" in
    deploy) provision && release ;;
    provision) provision ;;
    release) release ;;
    teardown) teardown ;;
    *) usage ;;
esac
