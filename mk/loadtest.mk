# `make loadtest`: locust, headless, against a real server started on a free port and stopped
# afterwards (loadtest/run.sh). Profiles and their p95 budgets live in loadtest/*.conf.
# LOADTEST_DURATION (seconds, default 60) is shared by the profiles; LOADTEST_PROFILES picks them.
# HTML and CSV reports are written to reports/loadtest/.

LOADTEST_DURATION ?= 60
LOADTEST_PROFILES ?= original heavy

.PHONY: loadtest load-test

loadtest: $(STAMP) $(MODEL) ## Load test a local server: original + heavy profiles (LOADTEST_DURATION=60)
	BIN=$(BIN) MODEL_DIR=$(MODEL_DIR) LOADTEST_DURATION=$(LOADTEST_DURATION) loadtest/run.sh $(LOADTEST_PROFILES)

load-test: loadtest ## Same as loadtest (the original target name)

.PHONY: loadtest-selftest
loadtest-selftest: $(STAMP) ## Prove the load-test gate fails against a stalled and an erroring server
	BIN=$(BIN) loadtest/selftest.sh $(LOADTEST_PROFILES)
