#!/usr/bin/env bash
# Server memory: peak RSS (VmHWM) of embedsearch-server after loading a
# bundle and answering 200 image queries, for the trained 60k bundle and a
# 1M-item bundle tiled from it (bench/make_big_bundle.cc, Flat index), with
# the query latency at each size. Writes bench/results/memory.md.
# Usage: bench/memory_compare.sh [BUILD_DIR] [BUNDLE] [BIG_ITEMS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/serving.sh
build=${1:-build}
bundle=${2:-out/bundle}
big_items=${3:-1000000}
big=out/bench-bundle-${big_items}
cmake --build "$build" --target make_big_bundle embedsearch-server embedsearch-client -j2 >/dev/null
if [[ ! -f $big/manifest.pb ]]; then
  "$build/bench/make_big_bundle" --from "$bundle" --out "$big" --items "$big_items" --index_spec Flat
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() {  # bundle -> "| items | spec | load s | idle MiB | peak MiB | p50 | p99 |"
  local b=$1 port=$((20000 + RANDOM % 20000)) start pid
  start=$(date +%s.%N)
  "$build/server/embedsearch-server" --bundle "$b" --address "127.0.0.1:$port" --log_format none 2>"$tmp/log" &
  pid=$!
  local client=("$build/client/embedsearch-client" --server "127.0.0.1:$port")
  wait_serving "$pid" "${client[@]}"
  local loaded; loaded=$(date +%s.%N)
  local idle; idle=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  "${client[@]}" bench --concurrency 4 --requests 200 --warmup 8 --json >"$tmp/bench.json"
  local peak; peak=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  local info; info=$("${client[@]}" info | tr '\n' ' ')
  kill -TERM "$pid"; wait "$pid" || true
  /usr/bin/python3 - "$tmp/bench.json" "$b" "$start" "$loaded" "$idle" "$peak" "$info" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1])); b = sys.argv[2]
start, loaded, idle, peak, info = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
items = re.search(r"gallery[_ ]size\D*(\d+)", info, re.I)
spec = re.search(r"index\s+(\S+)\s+gallery", info)
print(f"| `{b}` | {items.group(1) if items else '?'} | {spec.group(1) if spec else '?'} | {loaded-start:.1f} | "
      f"{idle/1024:.0f} | {peak/1024:.0f} | {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} | {sum(r['errors'].values())} |")
PY
}

{
  echo "## Memory: server RSS at 60k and 1M gallery items"
  echo
  echo "Command: \`bench/memory_compare.sh $build $bundle $big_items\` ($(date -u '+%Y-%m-%d') UTC, $(nproc) cores)."
  echo "Idle = VmRSS once SERVING; peak = VmHWM after 200 image queries (k=10, concurrency 4)."
  echo "Images stay in SQLite on disk (read per hit), so RSS is the encoder, the index and gRPC."
  echo
  echo "| bundle | items | index | start to SERVING s | idle RSS MiB | peak RSS MiB | p50 ms | p99 ms | errors |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
  measure "$bundle"
  measure "$big"
} | tee bench/results/memory.md
