# shellcheck shell=bash
# Shared settings and helpers of the Azure App Service scripts; sourced, never run.
#
# Every name can be overridden from the environment. The defaults are the names the original
# deployment used (resource group `Azuredevops`, web app `flask-ml-service`, a Linux Premium V2
# plan in `centralus`, the plan SKU `az webapp up` picks for Python apps). Web app names are
# global: set AZURE_APP_NAME to something unique before the first `make provision`.

: "${AZ:=az}"                                   # the Azure CLI (tests put a stub first on PATH)
: "${ML_SERVICE_PREDICT:=ml-service}"           # the ml-service command: predict, compare, watch
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
# API keys: one Key Vault (RBAC mode) per app holds them; the web app reads them through a Key
# Vault reference, the smoke tests at smoke time. AZURE_KEYVAULT defaults to kv-ml-<hash>.
: "${AZURE_KEYVAULT:=}"
: "${AZURE_API_KEY_SECRET:=ml-service-api-keys}"
# Deployment identities (user-assigned, federated with the pipelines): <prefix>-staging may
# deploy to the slot only, <prefix>-production may swap and route traffic.
: "${AZURE_DEPLOY_IDENTITIES:=true}"
: "${AZURE_DEPLOY_IDENTITY_PREFIX:=${AZURE_APP_NAME}-deploy}"
# A new role assignment takes a while to apply: data-plane calls retry "Forbidden" this long.
: "${AZURE_RBAC_TIMEOUT:=600}"
: "${AZURE_RBAC_POLL_INTERVAL:=15}"
# shellcheck disable=SC2016 # ${PORT} is expanded by App Service when the app starts, not here
DEFAULT_STARTUP_COMMAND='gunicorn --config python:ml_service.server.gunicorn_config --bind=0.0.0.0:${PORT:-8000} ml_service.http.app:app'
: "${AZURE_STARTUP_COMMAND:=$DEFAULT_STARTUP_COMMAND}"

SCRIPT_NAME=$(basename "$0")
AZ_ERR=$(mktemp "${TMPDIR:-/tmp}/azure-deploy.XXXXXX")
CLEANUP_PATHS=("$AZ_ERR")
CLEANUP_PIDS=()
cleanup() {
    if [ "${#CLEANUP_PIDS[@]}" -gt 0 ]; then kill "${CLEANUP_PIDS[@]}" 2>/dev/null || true; fi
    rm -rf "${CLEANUP_PATHS[@]}"
    # Azure Pipelines attaches the summary to the run once it is told where the finished file is.
    if [ "${SUMMARY_STARTED:-false}" = true ] && [ "${TF_BUILD:-}" = True ]; then
        printf '##vso[task.uploadsummary]%s\n' "$PROMOTION_SUMMARY"
    fi
}
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

# remove KIND NAME SHOW_ARGS -- DELETE_ARGS: delete one resource of the group when it exists.
remove() {
    local kind=$1 name=$2
    shift 2
    local -a show=() del=() g=(--resource-group "$AZURE_RESOURCE_GROUP")
    while [ "$1" != -- ]; do show+=("$1"); shift; done
    shift
    del=("$@")
    if az_lookup "${show[@]}" "${g[@]}" --name "$name" --query name --output tsv; then
        say "deleting $kind $name"
        az_run "${del[@]}" "${g[@]}" --name "$name"
    else
        say "$kind $name is already gone"
    fi
}

# remove_vault NAME WHAT: delete a Key Vault, then purge it so that its secrets are gone for good.
remove_vault() {
    remove "Key Vault" "$1" keyvault show -- keyvault delete
    if az_lookup keyvault show-deleted --name "$1" --query name --output tsv; then
        say "purging deleted Key Vault $1 ($2)"
        az_run keyvault purge --name "$1"
    fi
}

# slot_args SLOT: the `--slot` arguments for a slot name, none for production.
slot_args() {
    if [ -n "${1:-}" ] && [ "$1" != production ]; then
        printf '%s\n' --slot "$1"
    fi
}

# ml_service SUBCOMMAND ARGS...: run the ml-service command (with the API key, when known, in
# its environment only: never on a command line, never printed).
API_KEY=
ml_service() {
    local -a cli
    read -r -a cli <<<"$ML_SERVICE_PREDICT"
    if [ -n "$API_KEY" ]; then
        ML_SERVICE_API_KEY=$API_KEY "${cli[@]}" "$@"
    else
        "${cli[@]}" "$@"
    fi
}

# smoke URL: send the sample request to URL with the ml-service client (it retries with backoff).
smoke() {
    say "smoke test: $ML_SERVICE_PREDICT predict --url $1${API_KEY:+ (with an API key)}"
    ml_service predict --url "$1"
}

# hashed_name PREFIX NAME: PREFIX and 10 hex digits derived from the subscription, group and
# NAME, for names that are global (Key Vaults): stable across runs, unique per deployment.
hashed_name() {
    local sub
    sub=$(az_get account show --query id --output tsv)
    printf '%s%s\n' "$1" "$(printf '%s/%s/%s' "$sub" "$AZURE_RESOURCE_GROUP" "$2" | sha256sum | cut -c1-10)"
}

# app_vault_name: the Key Vault holding the app's API keys.
app_vault_name() {
    [ -n "$AZURE_KEYVAULT" ] || AZURE_KEYVAULT=$(hashed_name kv-ml- "$AZURE_APP_NAME")
    printf '%s\n' "$AZURE_KEYVAULT"
}

# new_api_key: a fresh random key on stdout (to be captured, never shown).
new_api_key() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

# first_key TEXT: the first key of a comma- or line-separated list of keys.
first_key() {
    local keys=${1//,/$'\n'}
    printf '%s\n' "${keys%%$'\n'*}"
}

# read_api_key: put the app's first API key, read from Key Vault now, in API_KEY (for smoke
# tests); ML_SERVICE_API_KEY in the environment takes its place when set.
read_api_key() {
    local vault value
    if [ -n "${ML_SERVICE_API_KEY:-}" ]; then
        API_KEY=$ML_SERVICE_API_KEY
        return
    fi
    vault=$(app_vault_name)
    say "reading the API key for the smoke test from Key Vault $vault"
    value=$(az_get keyvault secret show --vault-name "$vault" --name "$AZURE_API_KEY_SECRET" \
        --query value --output tsv)
    API_KEY=$(first_key "$value")
    [ -n "$API_KEY" ] || die "secret $AZURE_API_KEY_SECRET in $vault holds no key"
}

# az_until_allowed ARGS...: a read-only `az` call made right after a role assignment: retry
# while Azure answers "Forbidden" (the assignment is not applied yet), until AZURE_RBAC_TIMEOUT.
az_until_allowed() {
    local deadline=$((SECONDS + AZURE_RBAC_TIMEOUT))
    while :; do
        if AZ_OUT=$("$AZ" "$@" 2>"$AZ_ERR"); then
            return 0
        fi
        if ! grep -qiE 'Forbidden|not authorized|AuthorizationFailed' "$AZ_ERR" || [ "$SECONDS" -ge "$deadline" ]; then
            cat "$AZ_ERR" >&2
            die "'az $*' failed"
        fi
        say "not allowed yet (role assignments take a few minutes to apply); retrying"
        sleep "$AZURE_RBAC_POLL_INTERVAL"
    done
}

# ensure_role PRINCIPAL TYPE ROLE SCOPE WHO: give PRINCIPAL (object id; TYPE User or
# ServicePrincipal) the built-in ROLE at SCOPE exactly, unless it has it already.
ensure_role() {
    local principal=$1 type=$2 role=$3 scope=$4 who=$5 found
    found=$(az_get role assignment list --assignee "$principal" --role "$role" --scope "$scope" \
        --query "[].id" --output tsv)
    if [ -n "$found" ]; then
        say "$who has '$role' on ${scope##*/providers/}"
    else
        say "giving $who '$role' on ${scope##*/providers/}"
        az_run role assignment create --assignee-object-id "$principal" --assignee-principal-type "$type" \
            --role "$role" --scope "$scope" --output none
    fi
}

# operator_principal: the signed-in user's or service principal's object id and type, in
# OPERATOR_ID and OPERATOR_TYPE (User or ServicePrincipal).
# shellcheck disable=SC2034 # the scripts sourcing this file read what it sets
operator_principal() {
    local -a signed_in
    mapfile -t signed_in < <(az_get account show --query "[user.type, user.name]" --output tsv)
    if [ "${signed_in[0]:-}" = user ]; then
        OPERATOR_TYPE=User
        OPERATOR_ID=$(az_get ad signed-in-user show --query id --output tsv)
    else
        OPERATOR_TYPE=ServicePrincipal
        OPERATOR_ID=$(az_get ad sp show --id "${signed_in[1]:-}" --query id --output tsv)
    fi
    [ -n "$OPERATOR_ID" ] || die "cannot tell who is signed in (az account show)"
}

# ensure_identity NAME: a user-assigned managed identity in the group (created when missing);
# its principal and client ids in IDENTITY_PRINCIPAL and IDENTITY_CLIENT.
# shellcheck disable=SC2034 # the scripts sourcing this file read what it sets
ensure_identity() {
    local -a ids
    if az_lookup identity show --resource-group "$AZURE_RESOURCE_GROUP" --name "$1" \
        --query "[principalId, clientId]" --output tsv; then
        say "managed identity $1 exists"
    else
        say "creating managed identity $1"
        az_run identity create --resource-group "$AZURE_RESOURCE_GROUP" --name "$1" \
            --location "$AZURE_LOCATION" --output none
        AZ_OUT=$(az_get identity show --resource-group "$AZURE_RESOURCE_GROUP" --name "$1" \
            --query "[principalId, clientId]" --output tsv)
    fi
    mapfile -t ids <<<"$AZ_OUT"
    IDENTITY_PRINCIPAL=${ids[0]:-} IDENTITY_CLIENT=${ids[1]:-}
    [ -n "$IDENTITY_PRINCIPAL" ] || die "managed identity $1 has no principal id"
}

# --- model promotion (deploy.sh, aks.sh; docs/promotion.md) ---
# The challenger is compared with the champion production serves (`ml-service compare`: exit 0
# promote, 3 keep the champion, 1 could not compare); a canary gets CANARY_PERCENT of the
# traffic for CANARY_SECONDS while `ml-service watch` reads its /metrics (exit 0 healthy,
# 3 unhealthy, 1 could not watch). A kept champion is a result, not a failure, unless
# PROMOTION_FAIL_ON_KEEP=true.
: "${PROMOTION_COMPARE:=false}"
: "${PROMOTION_DATA:=}"                         # rows to compare on (default: compare's own)
# Where production's artifact is found by the version it serves: a directory of released models
# (<name>/<version>/), else the MLflow registry MLFLOW_TRACKING_URI names.
: "${PROMOTION_CHAMPION_REPOSITORY:=}"
: "${PROMOTION_FAIL_ON_KEEP:=false}"
: "${CANARY_PERCENT:=0}"                        # 0: no canary, release at once
: "${CANARY_SECONDS:=300}"
: "${CANARY_INTERVAL:=15}"
: "${CANARY_MAX_ERROR_RATE:=0.01}"
: "${CANARY_MAX_P99_MS:=500}"
: "${CANARY_MIN_REQUESTS:=0}"
# Where the job summary goes: GitHub's, or a file Azure Pipelines is told to attach.
: "${PROMOTION_SUMMARY:=${GITHUB_STEP_SUMMARY:-${TMPDIR:-/tmp}/ml-service-promotion.md}}"

# parse_promotion_flags ARGS...: the flags deploy.sh and aks.sh share; the rest in ARGS_LEFT.
parse_promotion_flags() {
    ARGS_LEFT=()
    while [ "$#" -gt 0 ]; do
        case "$1" in
            --compare) PROMOTION_COMPARE=true ;;
            --no-compare) PROMOTION_COMPARE=false ;;
            --canary | --canary-seconds)
                [ "$#" -ge 2 ] || die "$1 needs a value"
                if [ "$1" = --canary ]; then CANARY_PERCENT=$2; else CANARY_SECONDS=$2; fi
                shift
                ;;
            *) ARGS_LEFT+=("$1") ;;
        esac
        shift
    done
    [[ $CANARY_PERCENT =~ ^([0-9]|[1-9][0-9])$ ]] || die "--canary takes a percentage from 0 to 99, not '$CANARY_PERCENT'"
    [[ $CANARY_SECONDS =~ ^[1-9][0-9]*$ ]] || die "--canary-seconds takes a whole number of seconds, not '$CANARY_SECONDS'"
    case "$PROMOTION_COMPARE" in true | false) ;; *) die "PROMOTION_COMPARE must be true or false" ;; esac
}

# summary LINE...: add markdown lines to the job summary (and log them).
SUMMARY_STARTED=false
summary() {
    if [ "$SUMMARY_STARTED" = false ]; then
        SUMMARY_STARTED=true
        [ -n "${GITHUB_STEP_SUMMARY:-}" ] || : >"$PROMOTION_SUMMARY"
        printf '### ml-service release (%s)\n\n' "$SCRIPT_NAME" >>"$PROMOTION_SUMMARY"
    fi
    printf '%s\n' "$@" >>"$PROMOTION_SUMMARY"
    printf '%s: summary: %s\n' "$SCRIPT_NAME" "$@"
}

# pipeline_output NAME VALUE: a step output for the next job (GitHub Actions, Azure Pipelines).
pipeline_output() {
    if [ -n "${GITHUB_OUTPUT:-}" ]; then printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; fi
    if [ "${TF_BUILD:-}" = True ]; then printf '##vso[task.setvariable variable=%s;isOutput=true]%s\n' "$1" "$2"; fi
    say "$1=$2"
}

# compare_models CHAMPION CHALLENGER: run `ml-service compare`; its table goes to the summary.
# Returns its exit status (0 promote, 3 keep the champion, anything else: could not compare).
compare_models() {
    local out status=0
    local -a rows=()
    [ -z "$PROMOTION_DATA" ] || rows=(--data "$PROMOTION_DATA")
    [ -z "$PROMOTION_CHAMPION_REPOSITORY" ] || rows+=(--champion-repository "$PROMOTION_CHAMPION_REPOSITORY")
    say "comparing challenger $2 with champion $1"
    out=$(ml_service compare --champion "$1" --challenger "$2" "${rows[@]}") || status=$?
    printf '%s\n' "$out"
    summary "Champion \`$1\` against challenger \`${2##*/}\`:" "" '```' "$out" '```' ""
    return "$status"
}

# keep_champion REASON: end a release that keeps the champion: say why, tell the next job, and
# succeed (or fail, with PROMOTION_FAIL_ON_KEEP=true).
keep_champion() {
    summary "**Kept the champion**: $1"
    pipeline_output decision keep
    if [ "$PROMOTION_FAIL_ON_KEEP" = true ]; then
        die "kept the champion ($1); PROMOTION_FAIL_ON_KEEP=true makes that a failure"
    fi
    say "kept the champion: $1"
    exit 0
}

# watch_canary URL: `ml-service watch` on URL for CANARY_SECONDS; the verdict goes to the
# summary and to CANARY_VERDICT. Returns its exit status (0 healthy, 3 unhealthy, 1 unwatchable).
CANARY_VERDICT=
watch_canary() {
    local status=0
    say "watching the canary at $1 for ${CANARY_SECONDS}s (5xx at most $CANARY_MAX_ERROR_RATE, p99 at most ${CANARY_MAX_P99_MS} ms)"
    CANARY_VERDICT=$(ml_service watch --url "$1" --seconds "$CANARY_SECONDS" --interval "$CANARY_INTERVAL" \
        --max-error-rate "$CANARY_MAX_ERROR_RATE" --max-p99-ms "$CANARY_MAX_P99_MS" \
        --min-requests "$CANARY_MIN_REQUESTS") || status=$?
    [ -n "$CANARY_VERDICT" ] || CANARY_VERDICT="could not watch the canary (ml-service watch exited $status)"
    summary "Canary at ${CANARY_PERCENT}% for ${CANARY_SECONDS}s: $CANARY_VERDICT"
    return "$status"
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

# agent_vault_name: the Key Vault holding the registration PAT (kv-agent-<hash> by default).
agent_vault_name() {
    [ -n "$AGENT_KEYVAULT" ] || AGENT_KEYVAULT=$(hashed_name kv-agent- "$AGENT_VM_NAME")
    printf '%s\n' "$AGENT_KEYVAULT"
}
