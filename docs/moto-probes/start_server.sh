#!/bin/bash
# usage: start_server.sh [PORT]: starts the test venv's moto_server in the background.
PORT=${1:-57689}
here=$(cd "$(dirname "$0")" && pwd)
start=$(date +%s.%N)
"$here/../../.venv/bin/moto_server" -H 127.0.0.1 -p "$PORT" > "${TMPDIR:-/tmp}/moto-probe-server.log" 2>&1 &
echo $! > "${TMPDIR:-/tmp}/moto-probe-server.pid"
until curl -s -o /dev/null "http://127.0.0.1:$PORT/" ; do sleep 0.05; done
end=$(date +%s.%N)
echo "moto_server pid $! ready in $(echo "$end - $start" | bc) s"
