# shellcheck shell=bash
# Shared settings and helpers of the Azure App Service scripts; sourced, never run.
#
# Every name can be overridden from the environment. The defaults are the names the original
# deployment used (resource group `Azuredevops`, web app `flask-ml-service`, a Linux Premium V2
# plan in `centralus`, the plan SKU `az webapp up` picks for Python apps). Web app names are
# global: set AZURE_APP_NAME to something unique before the first `make provision`.

: "${AZ:=az}"                                   # the Azure CLI (tests put a stub first on PATH)
: "${ML_SERVICE_PREDICT:=ml-service}"           # smoke-test client: `$ML_SERVICE_PREDICT predict`
: "${AZURE_RESOURCE_GROUP:=Azuredevops}"
: "${AZURE_LOCATION:=centralus}"
: "${AZURE_APP_NAME:=${AZURE_WEBAPP_NAME:-flask-ml-service}}"   # AZURE_WEBAPP_NAME: the workflows' name
: "${AZURE_PLAN_NAME:=${AZURE_APP_NAME}-plan}"
: "${AZURE_PLAN_SKU:=P1V2}"                     # slots need Standard (S1) or above
: "${AZURE_RUNTIME:=PYTHON:3.11}"
: "${AZURE_SLOT:=${AZURE_WEBAPP_SLOT:-staging}}"
: "${AZURE_MODEL_DIR:=models/housing}"
: "${AZURE_LOG_LEVEL:=info}"
: "${AZURE_HEALTH_PATH:=/health/ready}"
# shellcheck disable=SC2016 # ${PORT} is expanded by App Service when the app starts, not here
DEFAULT_STARTUP_COMMAND='gunicorn --config python:ml_service.server.gunicorn_config --bind=0.0.0.0:${PORT:-8000} ml_service.http.app:app'
: "${AZURE_STARTUP_COMMAND:=$DEFAULT_STARTUP_COMMAND}"

SCRIPT_NAME=$(basename "$0")
AZ_ERR=$(mktemp "${TMPDIR:-/tmp}/azure-deploy.XXXXXX")
CLEANUP_PATHS=("$AZ_ERR")
cleanup() { rm -rf "${CLEANUP_PATHS[@]}"; }
trap cleanup EXIT

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

# az_run ARGS...: print and run a changing `az` command; on failure, show its error and stop.
az_run() {
    printf '+ az %s\n' "$*"
    if ! "$AZ" "$@" 2>"$AZ_ERR"; then
        cat "$AZ_ERR" >&2
        die "'az $1 $2 ...' failed; nothing after this step was done"
    fi
}

# az_get ARGS...: run a read-only `az` command and print its output; stop on any failure.
az_get() {
    if ! "$AZ" "$@" 2>"$AZ_ERR"; then
        cat "$AZ_ERR" >&2
        die "'az $*' failed"
    fi
}

# az_lookup ARGS...: run an `az ... show` and keep its output in AZ_OUT. Return 0 when the
# resource exists, 1 when it does not (ResourceNotFound, or the empty answer some `show`
# commands give); stop the script on any other error (not logged in, no permission, network).
# Call it directly (not inside $(...)) so that a real error stops the script.
AZ_OUT=
az_lookup() {
    AZ_OUT=
    if AZ_OUT=$("$AZ" "$@" 2>"$AZ_ERR"); then
        [ -n "$AZ_OUT" ]
        return
    fi
    if grep -qiE 'NotFound|could not be found|was not found' "$AZ_ERR"; then
        return 1
    fi
    cat "$AZ_ERR" >&2
    die "'az $*' failed"
}

# The image acr-build.sh pushes and aks.sh deploys: $AZURE_ACR_NAME.azurecr.io/$IMAGE_NAME:$IMAGE_TAG,
# the tag defaulting to the checkout's commit. Sets the defaults; refuses names Azure would refuse.
image_reference() {
    : "${AZURE_ACR_NAME:=mlserviceacr}"
    : "${IMAGE_NAME:=ml-service}"
    if [ -z "${IMAGE_TAG:-}" ]; then
        local repo
        repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
        IMAGE_TAG=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null) \
            || die "IMAGE_TAG is not set and $repo is not a git checkout"
    fi
    [[ "$AZURE_ACR_NAME" =~ ^[a-zA-Z0-9]{5,50}$ ]] \
        || die "AZURE_ACR_NAME '$AZURE_ACR_NAME' must be 5-50 letters and digits"
    [[ "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] \
        || die "IMAGE_TAG '$IMAGE_TAG' is not a valid image tag"
}

# Teardown scripts take one optional flag, --yes; without it they ask for a name to be typed.
parse_yes_flag() {
    ASSUME_YES=false
    case "${1:-}" in
        --yes | -y) ASSUME_YES=true ;;
        "") ;;
        *) die "usage: $SCRIPT_NAME [--yes]" ;;
    esac
}

# confirm_removal MAKE_TARGET WHAT NAME: unless --yes, have NAME typed (never without a terminal).
confirm_removal() {
    local target=$1 what=$2 name=$3 answer
    [ "$ASSUME_YES" = true ] && return 0
    [ -t 0 ] || die "not a terminal: pass --yes (make $target YES=1) to remove $name"
    read -r -p "Remove $what from $AZURE_RESOURCE_GROUP? Type the name $name: " answer
    [ "$answer" = "$name" ] || die "not confirmed; nothing removed"
}

# require_cli: stop early, with the fix, when a needed command is missing.
require_cli() {
    local cmd
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found on PATH (see docs/deploy-azure.md, prerequisites)"
    done
}

# ensure_group: create the resource group when it does not exist.
ensure_group() {
    if az_lookup group show --name "$AZURE_RESOURCE_GROUP" --query name --output tsv; then
        say "resource group $AZURE_RESOURCE_GROUP exists"
    else
        say "creating resource group $AZURE_RESOURCE_GROUP in $AZURE_LOCATION"
        az_run group create --name "$AZURE_RESOURCE_GROUP" --location "$AZURE_LOCATION" --output none
    fi
}

# slot_args SLOT: the `--slot` arguments for a slot name, none for production.
slot_args() {
    if [ -n "${1:-}" ] && [ "$1" != production ]; then
        printf '%s\n' --slot "$1"
    fi
}

# smoke URL: send the sample request to URL with the ml-service client (it retries with backoff).
smoke() {
    local -a predict
    read -r -a predict <<<"$ML_SERVICE_PREDICT"
    say "smoke test: ${predict[*]} predict --url $1"
    "${predict[@]}" predict --url "$1"
}

# --- build agent VM (agent.sh, agent-teardown.sh) ---
: "${AGENT_VM_NAME:=agentVM}"
: "${AGENT_VM_SIZE:=Standard_DS1_v2}"
: "${AGENT_VM_IMAGE:=Canonical:ubuntu-24_04-lts:server:latest}"
: "${AGENT_ADMIN_USER:=devopsagent}"
: "${AGENT_PUBLIC_SSH:=true}"                   # false: no public IP, no inbound SSH rule
: "${ADO_POOL:=vmAgentPool}"
: "${ADO_AGENT_NAME:=$AGENT_VM_NAME}"
: "${ADO_AGENT_VERSION:=4.264.2}"
: "${ADO_AGENT_SHA256:=}"
: "${AGENT_SECRET_NAME:=ado-agent-pat}"
: "${AGENT_KEYVAULT:=}"

# agent_vault_name: the Key Vault holding the registration PAT. Vault names are global, so the
# default is derived from the subscription, group and VM: stable across runs, unique per agent.
agent_vault_name() {
    if [ -z "$AGENT_KEYVAULT" ]; then
        local sub hash
        sub=$(az_get account show --query id --output tsv)
        hash=$(printf '%s/%s/%s' "$sub" "$AZURE_RESOURCE_GROUP" "$AGENT_VM_NAME" | sha256sum | cut -c1-10)
        AGENT_KEYVAULT="kv-agent-$hash"
    fi
    printf '%s\n' "$AGENT_KEYVAULT"
}
