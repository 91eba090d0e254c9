# The web page, the model report, metrics and drift.
# `make test-browser` runs the headless-chromium tests (chromium from Debian, installed when
# missing); `make screenshot` refreshes docs/images/home.png, the README's picture of the page;
# `make report` trains the default model when stale and prints where its report is.

.PHONY: browser-deps test-browser test-observability screenshot report

browser-deps: ## Install Debian's chromium for the browser tests when it is missing
	scripts/ensure-apt.sh chromium

test-browser: $(STAMP) browser-deps ## Browser tests of the home page (screenshots in reports/screenshots/)
	$(BIN)/python -m pytest tests/browser $(PYTEST_ARGS)

test-observability: $(STAMP) ## Metrics (multi-worker), drift and report tests
	$(BIN)/python -m pytest tests/observability tests/model/test_report.py $(PYTEST_ARGS)

screenshot: $(STAMP) browser-deps ## Refresh docs/images/home.png from the running page
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -k sample_house $(PYTEST_ARGS)

report: $(MODEL) ## Train the default model if stale and print the path of its report
	@echo "$(MODEL_DIR)/report.html (served at /model/report)"
