#!/usr/bin/env bash
# The plain server against Ray Serve with 1 and 2 replicas, under the same load.
#   bash scripts/serve_scaling.sh ARTIFACT [CLIENTS]
# Serves ARTIFACT three ways on this machine, one after the other (the plain server with
# all cores; --ray with one replica of all cores; --ray with two replicas of half the cores
# each), sends each the en clips through scripts/load_test.py --url with CLIENTS concurrent
# clients (default 8), and prints the three load-test rows. Needs the serve and ray extras.
set -euo pipefail
cd "$(dirname "$0")/.."
artifact=${1:?usage: bash scripts/serve_scaling.sh ARTIFACT [CLIENTS]}
clients=${2:-8}
cores=$(nproc)
half=$(( cores / 2 > 0 ? cores / 2 : 1 ))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() {
    local name=$1; shift
    local port
    port=$(python -c "from runtimes.serve.launch import free_port; print(free_port())")
    python -m runtimes.serve "$artifact" --port "$port" --log-level warning "$@" > "$out/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 180); do
        curl -sf "http://127.0.0.1:$port/health" > /dev/null && break
        kill -0 "$pid" 2> /dev/null || { cat "$out/$name.log" >&2; exit 1; }
        sleep 1
    done
    python scripts/load_test.py --url "http://127.0.0.1:$port" --clients "$clients" \
        --out "$out/$name" > "$out/$name.txt"
    kill -TERM "$pid"; wait "$pid" || true
    # the load test's row without its "vs off" and "server cores" columns (not known here)
    echo "| $name | $(grep '^| as running' "$out/$name.txt" | cut -d'|' -f3-6,8-11) |"
}

echo "$cores cores; load: scripts/load_test.py --url, $clients clients, the en clips"
echo
echo "| server | requests | errors | wall s | audio s/s | p50 s | p95 s | p99 s | mean batch |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
measure "plain, --threads $cores" --threads "$cores"
measure "--ray, 1 replica x $cores threads" --ray --replicas 1 --cpus-per-replica "$cores" --threads "$cores"
measure "--ray, 2 replicas x $half threads" --ray --replicas 2 --cpus-per-replica "$half" --threads "$half"
