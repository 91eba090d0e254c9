#!/usr/bin/env bash
# Prove the load-test gate: every profile must FAIL against a server that never answers and
# against one that answers 500. Exits non-zero if any profile passes against either.
# Usage: loadtest/selftest.sh [PROFILE ...]   (default: original heavy)
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${BIN:-.venv/bin}
reports=${LOADTEST_REPORTS:-reports/loadtest-selftest}
if [ "$#" -gt 0 ]; then
    profiles=("$@")
else
    profiles=(original heavy)
fi

fake_pid=
stop_fake() {
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
        fake_pid=
    fi
}
trap stop_fake EXIT

wrong=()
for mode in stall error; do
    for profile in "${profiles[@]}"; do
        port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        mkdir -p "$reports/$mode"
        log="$reports/$mode/$profile.log"
        "$bin/python" loadtest/fake_server.py "$mode" "$port" 120 &
        fake_pid=$!
        sleep 0.5
        echo "selftest: profile $profile against a server that does '$mode' (expect FAILED)"
        if LOADTEST_URL="http://127.0.0.1:$port" LOADTEST_DURATION=6 \
            LOADTEST_REPORTS="$reports/$mode" BIN=$bin loadtest/run.sh "$profile" >"$log" 2>&1; then
            echo "selftest: WRONG: profile $profile passed against a '$mode' server" >&2
            wrong+=("$profile/$mode")
        else
            grep -h 'gate FAILED' "$log" || true
        fi
        stop_fake
    done
done
if [ "${#wrong[@]}" -gt 0 ]; then
    echo "selftest: the gate let broken servers pass: ${wrong[*]}" >&2
    exit 1
fi
echo "selftest: the gate failed every profile against every broken server, as it must"
