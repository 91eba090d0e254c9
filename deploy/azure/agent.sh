#!/usr/bin/env bash
# Create the self-hosted Azure DevOps build agent: an Ubuntu VM with SSH-key login only and a
# system-assigned managed identity, whose cloud-init (agent-cloud-init.yaml + agent-register.sh)
# installs the build tools and registers the agent in pool ADO_POOL as a service on first boot.
# The registration PAT is read from ADO_PAT or a silent prompt and stored only in a Key Vault
# that the VM's identity may read: it is never echoed, logged, put in custom data or on any
# command line (it reaches `az keyvault secret set` through a pipe).
# The VM deletes the PAT from the vault once it has registered (agent-register.sh). A re-run
# creates nothing and asks for no PAT: once the PAT is gone it revokes the VM identity's access
# to the vault, and it purges a PAT left deleted but not purged.
# Required: ADO_ORG_URL (https://dev.azure.com/ORG). Settings: common.sh (AGENT_*, ADO_*).
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
here=$(dirname "${BASH_SOURCE[0]}")
pat=${ADO_PAT:-}   # taken out of the environment at once: no child process inherits it
unset ADO_PAT

: "${ADO_ORG_URL:=}"
if [ -z "${AGENT_SSH_PUBLIC_KEY:-}" ]; then
    for candidate in "$HOME/.ssh/id_ed25519.pub" "$HOME/.ssh/id_rsa.pub"; do
        if [ -f "$candidate" ]; then AGENT_SSH_PUBLIC_KEY=$candidate; break; fi
    done
fi

valid() { [[ $2 =~ $3 ]] || die "$1='$2' is not valid (expected $4)"; }
valid ADO_ORG_URL "$ADO_ORG_URL" '^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)*/?$' "https://dev.azure.com/ORG"
valid ADO_POOL "$ADO_POOL" '^[A-Za-z0-9 ._-]+$' "letters, digits, space, . _ -"
valid ADO_AGENT_NAME "$ADO_AGENT_NAME" '^[A-Za-z0-9._-]+$' "letters, digits, . _ -"
valid ADO_AGENT_VERSION "$ADO_AGENT_VERSION" '^[0-9]+\.[0-9]+\.[0-9]+$' "a version such as 4.264.2"
valid ADO_AGENT_SHA256 "$ADO_AGENT_SHA256" '^([0-9a-f]{64})?$' "64 hex digits or empty"
valid AGENT_VM_NAME "$AGENT_VM_NAME" '^[A-Za-z][A-Za-z0-9-]{0,50}$' "letters, digits, -"
valid AGENT_ADMIN_USER "$AGENT_ADMIN_USER" '^[a-z_][a-z0-9_-]{0,31}$' "a Linux user name"
# revoke_after_registration: once the VM has deleted the PAT, take the VM's access to the vault
# away (and purge a PAT it could only delete); while the PAT is there, the agent is not
# registered yet and nothing changes.
revoke_after_registration() {
    local vault principal
    vault=$(agent_vault_name)
    az_lookup keyvault show --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" --query name --output tsv ||
        { say "no Key Vault $vault: nothing to revoke"; return 0; }
    if [ -n "$(az_get keyvault secret list --vault-name "$vault" --query "[?name=='$AGENT_SECRET_NAME'].id" --output tsv)" ]; then
        say "the PAT is still in $vault: the agent has not registered yet; nothing to do"
        return 0
    fi
    if [ -n "$(az_get keyvault secret list-deleted --vault-name "$vault" --query "[?name=='$AGENT_SECRET_NAME'].recoveryId" --output tsv)" ]; then
        say "purging the deleted PAT from $vault"
        az_run keyvault secret purge --vault-name "$vault" --name "$AGENT_SECRET_NAME"
    fi
    principal=$(az_get vm show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AGENT_VM_NAME" \
        --query identity.principalId --output tsv)
    if [ -n "$(az_get keyvault show --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" \
        --query "properties.accessPolicies[?objectId=='$principal'].objectId" --output tsv)" ]; then
        say "the agent has registered and deleted its PAT: revoking the VM's access to $vault"
        az_run keyvault delete-policy --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" \
            --object-id "$principal" --output none
    else
        say "the VM has no access to $vault: nothing to do"
    fi
}

[[ -n ${AGENT_SSH_PUBLIC_KEY:-} && -f ${AGENT_SSH_PUBLIC_KEY:-} ]] ||
    die "no SSH public key: create one with 'ssh-keygen -t ed25519' or set AGENT_SSH_PUBLIC_KEY"
require_cli "$AZ" base64 sha256sum

say "build agent $AGENT_VM_NAME in $AZURE_RESOURCE_GROUP ($AZURE_LOCATION), pool $ADO_POOL of $ADO_ORG_URL"
ensure_group
if az_lookup vm show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AGENT_VM_NAME" \
    --query provisioningState --output tsv; then
    say "VM $AGENT_VM_NAME exists ($AZ_OUT); the agent registers once, on its first boot"
    revoke_after_registration
    exit 0
fi

if [ -z "$pat" ]; then
    [ -t 0 ] || die "set ADO_PAT or run in a terminal to be asked for the Azure DevOps PAT"
    read -r -s -p "Azure DevOps PAT (scope: Agent Pools, read & manage): " pat
    printf '\n'
fi
[ -n "$pat" ] || die "empty PAT"
vault=$(agent_vault_name)
if az_lookup keyvault show --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" --query name --output tsv; then
    say "Key Vault $vault exists"
else
    say "creating Key Vault $vault for the registration token"
    az_run keyvault create --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" --location "$AZURE_LOCATION" \
        --enable-rbac-authorization false --retention-days 7 --output none
fi

say "storing the PAT as secret $AGENT_SECRET_NAME in $vault (through a pipe, never an argument)"
printf '%s' "$pat" | az_run keyvault secret set --vault-name "$vault" --name "$AGENT_SECRET_NAME" \
    --file /dev/stdin --encoding utf-8 --output none
unset pat

custom_data=$(mktemp "${TMPDIR:-/tmp}/agent-cloud-init.XXXXXX")
CLEANUP_PATHS+=("$custom_data")
data=$(<"$here/agent-cloud-init.yaml")
data=${data//@@ADO_ORG_URL@@/$ADO_ORG_URL}
data=${data//@@ADO_POOL@@/$ADO_POOL}
data=${data//@@ADO_AGENT_NAME@@/$ADO_AGENT_NAME}
data=${data//@@ADO_AGENT_VERSION@@/$ADO_AGENT_VERSION}
data=${data//@@ADO_AGENT_SHA256@@/$ADO_AGENT_SHA256}
data=${data//@@KEYVAULT_NAME@@/$vault}
data=${data//@@SECRET_NAME@@/$AGENT_SECRET_NAME}
data=${data//@@AGENT_USER@@/azagent}
data=${data//@@REGISTER_SCRIPT_B64@@/$(base64 -w0 "$here/agent-register.sh")}
[[ $data != *@@* ]] || die "agent-cloud-init.yaml has a placeholder agent.sh does not fill"
printf '%s\n' "$data" >"$custom_data"
if [ -n "${AGENT_CUSTOM_DATA_OUT:-}" ]; then cp "$custom_data" "$AGENT_CUSTOM_DATA_OUT"; fi

network=(--public-ip-address "${AGENT_VM_NAME}PublicIP" --public-ip-sku Standard --nsg-rule SSH)
if [ "$AGENT_PUBLIC_SSH" != true ]; then network=(--public-ip-address "" --nsg-rule NONE); fi
say "creating VM $AGENT_VM_NAME ($AGENT_VM_SIZE, $AGENT_VM_IMAGE), SSH key $AGENT_SSH_PUBLIC_KEY"
az_run vm create --resource-group "$AZURE_RESOURCE_GROUP" --name "$AGENT_VM_NAME" --location "$AZURE_LOCATION" \
    --image "$AGENT_VM_IMAGE" --size "$AGENT_VM_SIZE" --admin-username "$AGENT_ADMIN_USER" \
    --authentication-type ssh --ssh-key-values "$AGENT_SSH_PUBLIC_KEY" --assign-identity \
    --custom-data "$custom_data" "${network[@]}" --nsg "${AGENT_VM_NAME}NSG" \
    --vnet-name "${AGENT_VM_NAME}VNET" --subnet "${AGENT_VM_NAME}Subnet" --os-disk-name "${AGENT_VM_NAME}OsDisk" \
    --nic-delete-option Delete --os-disk-delete-option Delete --tags role=ado-agent --output none

principal=$(az_get vm show --resource-group "$AZURE_RESOURCE_GROUP" --name "$AGENT_VM_NAME" \
    --query identity.principalId --output tsv)
[ -n "$principal" ] || die "VM $AGENT_VM_NAME has no managed identity"
say "letting the VM's identity read the PAT once, then delete and purge it"
az_run keyvault set-policy --resource-group "$AZURE_RESOURCE_GROUP" --name "$vault" --object-id "$principal" \
    --secret-permissions get delete purge --output none

ip=$(az_get vm show --show-details --resource-group "$AZURE_RESOURCE_GROUP" --name "$AGENT_VM_NAME" \
    --query publicIps --output tsv)
say "done: the agent registers itself within minutes of first boot"
say "follow it with: ssh $AGENT_ADMIN_USER@${ip:-<private address>} sudo tail -f /var/log/cloud-init-output.log"
