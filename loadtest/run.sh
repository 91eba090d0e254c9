#!/usr/bin/env bash
# Load test: start ml-service on a free port, run each locust profile against it, stop it.
#
# Usage: loadtest/run.sh [PROFILE ...]        (default: original heavy; see loadtest/*.conf)
# Environment:
#   LOADTEST_DURATION        total seconds for all profiles (default 60: original gets 2/3,
#                            the others share the rest)
#   LOADTEST_URL             test this running service instead of starting one
#   LOADTEST_REPORTS         report directory (default reports/loadtest)
#   LOADTEST_WORKERS         server worker processes (default 2)
#   LOADTEST_READY_TIMEOUT   seconds to wait for /health/ready (default 90)
#   BIN, MODEL_DIR           virtualenv bin directory and model artifact (default .venv/bin,
#                            models/housing)
# Exits non-zero when the server does not become ready or any profile fails its gate.
set -euo pipefail

cd "$(dirname "$0")/.."
bin=${BIN:-.venv/bin}
model_dir=${MODEL_DIR:-models/housing}
reports=${LOADTEST_REPORTS:-reports/loadtest}
duration=${LOADTEST_DURATION:-60}
workers=${LOADTEST_WORKERS:-2}
ready_timeout=${LOADTEST_READY_TIMEOUT:-90}
url=${LOADTEST_URL:-}
if [ "$#" -gt 0 ]; then
    profiles=("$@")
else
    profiles=(original heavy)
fi

for profile in "${profiles[@]}"; do
    [ -f "loadtest/$profile.conf" ] || { echo "loadtest: no profile loadtest/$profile.conf" >&2; exit 2; }
done
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt "${#profiles[@]}" ]; then
    echo "loadtest: LOADTEST_DURATION must be a whole number of seconds >= ${#profiles[@]}" >&2
    exit 2
fi
mkdir -p "$reports"

server_pid=
stop_server() {
    [ -n "$server_pid" ] || return 0
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
        local deadline=$((SECONDS + 40))
        while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "loadtest: server did not stop in 40 s; killing it" >&2
            kill -KILL -- "-$server_pid" 2>/dev/null || kill -KILL "$server_pid" 2>/dev/null || true
        fi
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

probe() {
    # One GET; succeeds on HTTP 200 only.
    "$bin/python" - "$1" <<'PY'
import sys
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

if [ -z "$url" ]; then
    port=$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url="http://127.0.0.1:$port"
    echo "loadtest: starting ml-service ($workers workers, model $model_dir) on $url"
    # A session of its own, so stopping it stops every worker too.
    PORT=$port ML_SERVICE_HOST=127.0.0.1 ML_SERVICE_WORKERS=$workers \
        ML_SERVICE_MODEL_DIR=$model_dir ML_SERVICE_LOG_LEVEL=warning \
        setsid "$bin/ml-service" serve >"$reports/server.log" 2>&1 &
    server_pid=$!
    deadline=$((SECONDS + ready_timeout))
    until probe "$url/health/ready"; do
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "loadtest: server exited before becoming ready; its log:" >&2
            tail -n 40 "$reports/server.log" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "loadtest: server not ready after ${ready_timeout} s; its log:" >&2
            tail -n 40 "$reports/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
fi

failed=()
remaining=$duration
for i in "${!profiles[@]}"; do
    profile=${profiles[$i]}
    left=$((${#profiles[@]} - i))
    if [ "$i" -eq 0 ] && [ "$left" -gt 1 ]; then
        seconds=$((duration * 2 / 3))
    else
        seconds=$((remaining / left))
    fi
    remaining=$((remaining - seconds))
    echo "loadtest: profile $profile for ${seconds} s against $url"
    if "$bin/locust" --config "loadtest/$profile.conf" --host "$url" --run-time "${seconds}s" \
        --csv "$reports/$profile" --html "$reports/$profile.html" --loglevel WARNING; then
        echo "loadtest: profile $profile passed"
    else
        echo "loadtest: profile $profile FAILED" >&2
        failed+=("$profile")
    fi
done

if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
    echo "loadtest: the server died during the run; its log:" >&2
    tail -n 40 "$reports/server.log" >&2
    failed+=(server)
fi
echo "loadtest: reports in $reports/"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "loadtest: FAILED: ${failed[*]}" >&2
    exit 1
fi
