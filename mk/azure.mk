# Azure App Service delivery and the self-hosted build agent (deploy/azure/, docs/deploy-azure.md).
#
# Cloud targets (need `az login`): provision, deploy, canary, deploy-staging, deploy-production,
# smoke, rollback, logs, teardown, agent, agent-teardown. deploy-staging and deploy-production
# are the two halves of a release the pipelines run with their two identities (deploy.sh
# --phase); canary is the whole release with the model comparison and a canary. Names come from the environment (AZURE_RESOURCE_GROUP, AZURE_APP_NAME, ...;
# see deploy/azure/common.sh).
# Offline gate: `lint` runs lint-azure-cli (every `az` line the scripts can produce, checked
# against the real azure-cli from a cached tool environment) and lint-cloud-init.

AZURE_CLI_VENV ?= .tools/azure-cli
AZURE_CLI_STAMP := $(AZURE_CLI_VENV)/.installed
AZ_REAL := $(AZURE_CLI_VENV)/bin/az
AZURE_SCRIPTS := deploy/azure
AZURE_CLOUD_INIT := $(wildcard $(AZURE_SCRIPTS)/*cloud-init*.yaml)
# The smoke-test client the scripts call; the project's own, from the virtualenv.
ML_SERVICE_PREDICT ?= $(abspath $(BIN))/ml-service
AZURE_PREDICT_ENV = ML_SERVICE_PREDICT='$(ML_SERVICE_PREDICT)'
# The canary: its share of production's traffic (%) and how long it is watched.
CANARY_PERCENT ?= 10
CANARY_SECONDS ?= 300
ML_SERVICE_PACKAGE ?= $(PACKAGE)

.PHONY: azure-cli lint-azure-cli lint-cloud-init lock-azure-cli test-azure \
	provision deploy canary deploy-staging deploy-production smoke rollback logs teardown agent agent-teardown

lint: lint-azure-cli lint-cloud-init

$(AZURE_CLI_STAMP): requirements/azure-cli.txt
	@test -x $(AZURE_CLI_VENV)/bin/python || $(PYTHON) -m venv $(AZURE_CLI_VENV)
	$(AZURE_CLI_VENV)/bin/python -m pip --quiet --disable-pip-version-check install --require-hashes -r requirements/azure-cli.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	rm -f $(AZURE_CLI_VENV)/checked-lines.json
	AZURE_CONFIG_DIR=$$(mktemp -d) $(AZ_REAL) version --output none
	@touch $@

azure-cli: $(AZURE_CLI_STAMP) ## Install the pinned azure-cli into .tools/azure-cli (cached)

lint-azure-cli: $(STAMP) $(AZURE_CLI_STAMP) ## Check every az line of deploy/azure against the real azure-cli
	AZURE_CLI_REAL=$(AZ_REAL) AZURE_CLI_REQUIRED=1 $(BIN)/python -m pytest -q tests/deploy/test_azure_cli_real.py

lint-cloud-init: ## Validate the cloud-init files with `cloud-init schema`
	@scripts/ensure-apt.sh cloud-init
	@for f in $(AZURE_CLOUD_INIT); do cloud-init schema --config-file "$$f" || exit 1; done

test-azure: $(STAMP) ## Run only the offline tests of the Azure scripts
	$(BIN)/python -m pytest -q tests/deploy -k azure

lock-azure-cli: $(STAMP) ## Re-resolve requirements/azure-cli.txt from requirements/azure-cli.in
	$(BIN)/uv pip compile requirements/azure-cli.in --universal --python-version 3.11 --generate-hashes -q -o requirements/azure-cli.txt

provision: ## Create or update the App Service resources (idempotent)
	$(AZURE_SCRIPTS)/provision.sh

deploy: $(STAMP) package ## Zip-deploy to the staging slot, smoke-test, swap into production
	$(AZURE_PREDICT_ENV) ML_SERVICE_PACKAGE=$(PACKAGE) $(AZURE_SCRIPTS)/deploy.sh

canary: $(STAMP) package ## deploy, with the model compared first and a canary (CANARY_PERCENT, CANARY_SECONDS) before the swap
	$(AZURE_PREDICT_ENV) ML_SERVICE_PACKAGE=$(PACKAGE) $(AZURE_SCRIPTS)/deploy.sh --compare \
		--canary $(CANARY_PERCENT) --canary-seconds $(CANARY_SECONDS)

deploy-staging: $(STAMP) ## Release, first half: compare (PROMOTION_COMPARE), deploy ML_SERVICE_PACKAGE to the slot, smoke-test
	$(AZURE_PREDICT_ENV) ML_SERVICE_PACKAGE='$(ML_SERVICE_PACKAGE)' $(AZURE_SCRIPTS)/deploy.sh --phase staging

deploy-production: $(STAMP) ## Release, second half: canary (CANARY_PERCENT, 0 for none), swap, smoke-test
	$(AZURE_PREDICT_ENV) $(AZURE_SCRIPTS)/deploy.sh --phase production \
		--canary $(CANARY_PERCENT) --canary-seconds $(CANARY_SECONDS)

smoke: $(STAMP) ## Smoke-test the live app (or URL=https://host) with ml-service predict
	$(AZURE_PREDICT_ENV) $(AZURE_SCRIPTS)/smoke.sh $(URL)

rollback: $(STAMP) ## Swap the previous release back into production
	$(AZURE_PREDICT_ENV) $(AZURE_SCRIPTS)/rollback.sh

logs: ## Stream the app's logs (AZURE_LOG_SLOT=staging, LOGS_DOWNLOAD=file.zip)
	$(AZURE_SCRIPTS)/logs.sh

teardown: ## Remove the web app, its plan and the then-empty group (YES=1 skips the prompt)
	$(AZURE_SCRIPTS)/teardown.sh $(if $(YES),--yes)

agent: ## Create the self-hosted build agent VM (ADO_ORG_URL=..., PAT from ADO_PAT or a prompt)
	$(AZURE_SCRIPTS)/agent.sh

agent-teardown: ## Remove the build agent VM and everything created with it (YES=1)
	$(AZURE_SCRIPTS)/agent-teardown.sh $(if $(YES),--yes)
