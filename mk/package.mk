# `make package`: the App Service deployment package, dist/ml-service-app.zip.
#
# Exactly what both pipelines deploy. At its root: requirements.txt (the hashed runtime lock, for
# the platform's build with SCM_DO_BUILD_DURING_DEPLOYMENT=true), the ml_service package source
# (importable from the unzipped root) and the trained model artifact under models/housing/.
# Nothing else: no tests, no virtualenv, no caches. $(PACKAGE_DIR) keeps the unzipped tree
# (Azure Pipelines archives that very tree with ArchiveFiles@2).
# App Service runs APP_STARTUP_COMMAND from the unzipped root; `make package-startup-command`
# prints it for provisioning scripts and tests.

PACKAGE := dist/ml-service-app.zip
PACKAGE_DIR := build/package
APP_STARTUP_COMMAND := gunicorn --config python:ml_service.server.gunicorn_config --bind=0.0.0.0:$${PORT:-8000} ml_service.http.app:app
PACKAGE_SOURCES = $(shell find src/ml_service -type f -not -path '*/__pycache__/*' -not -name '*.py[co]' 2>/dev/null)

.PHONY: package package-startup-command

package: $(PACKAGE) ## Build dist/ml-service-app.zip: the App Service package (app, lock, model)

$(PACKAGE): $(MODEL) requirements/runtime.txt $(PACKAGE_SOURCES) mk/package.mk
	rm -rf $(PACKAGE_DIR)
	mkdir -p $(PACKAGE_DIR)/models $(@D)
	cp requirements/runtime.txt $(PACKAGE_DIR)/requirements.txt
	cp -R src/ml_service $(PACKAGE_DIR)/ml_service
	find $(PACKAGE_DIR)/ml_service \( -name __pycache__ -o -name '*.py[co]' \) -prune -exec rm -rf {} +
	cp -R $(MODEL_DIR) $(PACKAGE_DIR)/models/housing
	rm -f $@
	cd $(PACKAGE_DIR) && $(abspath $(BIN))/python -m zipfile -c $(abspath $@) requirements.txt ml_service models
	@echo "package: $@ ($$(du -h $@ | cut -f1))"

package-startup-command: ## Print the App Service startup command for the package
	@printf '%s\n' '$(APP_STARTUP_COMMAND)'
