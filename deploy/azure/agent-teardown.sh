#!/usr/bin/env bash
# Remove the build agent VM and everything agent.sh created with it: the VM, its NIC, OS disk,
# public IP, network security group and virtual network, and the Key Vault holding the
# registration PAT (deleted, then purged so the PAT is gone for good). The resource group is
# kept. Asks for confirmation unless run with --yes; with nothing left, it says so and succeeds.
# Unregister the agent from its pool in Azure DevOps (Organization settings > Agent pools).
# Usage: agent-teardown.sh [--yes]
set -euo pipefail
# shellcheck source=deploy/azure/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

parse_yes_flag "$@"
require_cli "$AZ"
confirm_removal agent-teardown "build agent VM $AGENT_VM_NAME and its resources" "$AGENT_VM_NAME"

remove VM "$AGENT_VM_NAME" vm show -- vm delete --yes
remove NIC "${AGENT_VM_NAME}VMNic" network nic show -- network nic delete
remove "public IP" "${AGENT_VM_NAME}PublicIP" network public-ip show -- network public-ip delete
remove NSG "${AGENT_VM_NAME}NSG" network nsg show -- network nsg delete
remove VNet "${AGENT_VM_NAME}VNET" network vnet show -- network vnet delete
remove disk "${AGENT_VM_NAME}OsDisk" disk show -- disk delete --yes

remove_vault "$(agent_vault_name)" "and the PAT in it"
say "done (unregister agent $ADO_AGENT_NAME from pool $ADO_POOL in Azure DevOps if it is still listed)"
