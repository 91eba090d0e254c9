#!/usr/bin/env bash
# First-boot installer of the Azure DevOps build agent, run as root by cloud-init (see
# agent-cloud-init.yaml): downloads the pinned agent release from Microsoft, checks its SHA-256
# when one is configured, installs its dependencies, reads the registration PAT from Key Vault
# with the VM's managed identity (retrying until agent.sh has granted access, within a
# deadline), registers the agent in the pool, installs it as a systemd service, and then
# deletes the PAT from Key Vault (and purges it), so that nothing on the VM can read it again.
# The PAT only ever lives in this process's memory and in the environment of config.sh: it is
# never echoed, written to disk or passed on a command line.
# Settings come from /etc/ado-agent/agent.env (ADO_AGENT_ENV overrides the path).
set -euo pipefail

# shellcheck source=/dev/null
. "${ADO_AGENT_ENV:-/etc/ado-agent/agent.env}"
: "${ADO_ORG_URL:?}" "${ADO_POOL:?}" "${ADO_AGENT_NAME:?}" "${ADO_AGENT_VERSION:?}"
: "${KEYVAULT_NAME:?}" "${SECRET_NAME:?}" "${AGENT_USER:=azagent}" "${ADO_AGENT_SHA256:=}"
: "${AGENT_DIR:=/opt/ado-agent}"
: "${SECRET_TIMEOUT:=1200}"
: "${SECRET_POLL_INTERVAL:=15}"
: "${AGENT_BASE_URL:=https://download.agent.dev.azure.com/agent}"
: "${CURL:=curl}" "${RUNUSER:=runuser}"
IMDS_URL="http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
SECRET_URL="https://$KEYVAULT_NAME.vault.azure.net/secrets/$SECRET_NAME?api-version=7.4"
DELETED_URL="https://$KEYVAULT_NAME.vault.azure.net/deletedsecrets/$SECRET_NAME?api-version=7.4"
: "${PURGE_ATTEMPTS:=10}"

log() { printf 'ado-agent-register: %s\n' "$*"; }
die() { log "error: $*" >&2; exit 1; }
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# vault METHOD URL: a Key Vault call with the managed identity's token (sent through stdin).
vault() {
    printf 'Authorization: Bearer %s\n' "$access_token" |
        "$CURL" --fail --silent --show-error --max-time 30 --request "$1" --header @- "$2" >/dev/null
}

if [ -f "$AGENT_DIR/.agent" ]; then
    log "agent already registered in $AGENT_DIR; nothing to do"
    exit 0
fi

id -u "$AGENT_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$AGENT_USER"
mkdir -p "$AGENT_DIR"
tarball="$AGENT_DIR/agent.tar.gz"
url="$AGENT_BASE_URL/$ADO_AGENT_VERSION/vsts-agent-linux-x64-$ADO_AGENT_VERSION.tar.gz"
log "downloading agent $ADO_AGENT_VERSION from $url"
"$CURL" --fail --silent --show-error --location --retry 5 --max-time 600 --output "$tarball" "$url"
if [ -n "$ADO_AGENT_SHA256" ]; then
    printf '%s  %s\n' "$ADO_AGENT_SHA256" "$tarball" | sha256sum --check --status ||
        die "agent download does not match ADO_AGENT_SHA256"
    log "agent checksum verified"
fi
tar -xzf "$tarball" -C "$AGENT_DIR"
rm -f "$tarball"
chown -R "$AGENT_USER:" "$AGENT_DIR"
if [ -x "$AGENT_DIR/bin/installdependencies.sh" ]; then
    "$AGENT_DIR/bin/installdependencies.sh"
fi

log "reading the registration token from Key Vault $KEYVAULT_NAME (up to ${SECRET_TIMEOUT}s)"
deadline=$((SECONDS + SECRET_TIMEOUT))
secret_json=
while :; do
    if token_json=$("$CURL" --fail --silent --max-time 30 --header "Metadata: true" "$IMDS_URL") &&
        access_token=$(json_field access_token <<<"$token_json") &&
        secret_json=$(printf 'Authorization: Bearer %s\n' "$access_token" |
            "$CURL" --fail --silent --max-time 30 --header @- "$SECRET_URL"); then
        break
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no access to secret $SECRET_NAME in $KEYVAULT_NAME after ${SECRET_TIMEOUT}s"
    sleep "$SECRET_POLL_INTERVAL"
done
unset token_json
VSTS_AGENT_INPUT_TOKEN=$(json_field value <<<"$secret_json")
unset secret_json
export VSTS_AGENT_INPUT_TOKEN

log "registering agent $ADO_AGENT_NAME in pool $ADO_POOL of $ADO_ORG_URL"
(
    cd "$AGENT_DIR"
    "$RUNUSER" -u "$AGENT_USER" -w VSTS_AGENT_INPUT_TOKEN -- ./config.sh --unattended \
        --url "$ADO_ORG_URL" --auth pat --pool "$ADO_POOL" --agent "$ADO_AGENT_NAME" \
        --work _work --replace --acceptTeeEula
)
unset VSTS_AGENT_INPUT_TOKEN
(cd "$AGENT_DIR" && ./svc.sh install "$AGENT_USER" && ./svc.sh start)
log "agent $ADO_AGENT_NAME registered and running as a service"

# The PAT has served its purpose: delete it, then purge the soft-deleted copy (possible once
# the deletion has completed, a few seconds later).
log "deleting the registration token from Key Vault $KEYVAULT_NAME"
vault DELETE "$SECRET_URL" || die "could not delete secret $SECRET_NAME; delete it by hand: make agent"
for attempt in $(seq "$PURGE_ATTEMPTS"); do
    if vault DELETE "$DELETED_URL"; then
        unset access_token
        log "registration token deleted and purged"
        exit 0
    fi
    log "purge not possible yet (attempt $attempt of $PURGE_ATTEMPTS)"
    sleep "$SECRET_POLL_INTERVAL"
done
unset access_token
die "secret $SECRET_NAME is deleted but not purged; run make agent to finish"
