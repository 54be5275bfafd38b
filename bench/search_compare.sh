#!/usr/bin/env bash
# End-to-end image queries over gRPC on loopback (embedsearch-client bench)
# next to the same work in-process (search_inprocess_bench: decode + encode
# + FAISS + catalog, no gRPC), at several concurrency levels, in one run.
# Writes a markdown table to bench/results/search.md (and prints it).
# Usage: bench/search_compare.sh BUNDLE [BUILD_DIR] [SECONDS_PER_LEVEL]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/serving.sh
bundle=${1:?usage: bench/search_compare.sh BUNDLE [BUILD_DIR] [SECONDS]}
build=${2:-build}
seconds=${3:-5}
levels=(1 4 16 64)
port=$((20000 + RANDOM % 20000))
out=bench/results/search.md
tmp=$(mktemp -d)

"$build/server/embedsearch-server" --bundle "$bundle" --address "127.0.0.1:$port" \
  --log_format json 2>"$tmp/server.log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
client=("$build/client/embedsearch-client" --server "127.0.0.1:$port")
wait_serving "$server_pid" "${client[@]}"

# The server's CPU seconds (user + system, all threads) so far.
server_cpu() { awk -v tck="$(getconf CLK_TCK)" '{print ($14 + $15) / tck}' "/proc/$server_pid/stat"; }
# Unary Search calls, then the same queries over SearchStream (one stream
# per concurrent query: no per-call HTTP/2 stream, metadata or call object).
for c in "${levels[@]}"; do
  for mode in unary stream; do
    flags=(); [[ $mode == stream ]] && flags=(--stream)
    "${client[@]}" bench --concurrency "$c" --duration 0.5 --warmup $((2 * c)) "${flags[@]}" >/dev/null
    before=$(server_cpu)
    "${client[@]}" bench --concurrency "$c" --duration "$seconds" --json "${flags[@]}" >"$tmp/$mode-$c.json"
    echo "$before $(server_cpu)" >"$tmp/server-cpu-$mode-$c"
  done
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
kill -TERM $server_pid; wait $server_pid || true
"$build/bench/search_inprocess_bench" --bundle "$bundle" --duration "$seconds" \
  --concurrency "$(IFS=,; echo "${levels[*]}")" --json >"$tmp/inproc.json"

/usr/bin/python3 - "$tmp" "$bundle" "$seconds" "$rss_kb" "${levels[@]}" >"$tmp/table.md" <<'PY'
import json, sys
tmp, bundle, seconds, rss_kb, levels = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
inproc = {}
for line in open(f"{tmp}/inproc.json"):
    if line.strip():
        r = json.loads(line); inproc[str(r["concurrency"])] = r
print(f"Bundle `{bundle}`, k=10, Fashion-MNIST test images as PNG queries, {seconds} s per level and mode, "
      "server and client on one 2-core machine.\n")
def cpu_ms(mode, c, g):
    before, after = map(float, open(f"{tmp}/server-cpu-{mode}-{c}").read().split())
    return 1000 * (after - before) / max(1, g["requests"]), 1000 * g["cpu_seconds"] / max(1, g["requests"])
print("| concurrency | gRPC req/s | gRPC p50 ms | gRPC p99 ms | stream req/s | stream p50 ms | stream p99 ms | errors | in-process req/s | in-process p50 ms | in-process p99 ms | gRPC / in-process | stream / in-process | CPU ms/query: server (gRPC) | client | server (stream) | client | in-process |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in levels:
    g = json.load(open(f"{tmp}/unary-{c}.json")); s = json.load(open(f"{tmp}/stream-{c}.json")); i = inproc[c]
    errors = sum(g["errors"].values()) + sum(s["errors"].values()) + sum(i["errors"].values())
    gl, sl, il = g["latency_ms"], s["latency_ms"], i["latency_ms"]
    gs, gc = cpu_ms("unary", c, g)
    ss, sc = cpu_ms("stream", c, s)
    inproc_ms = 1000 * i["cpu_seconds"] / max(1, i["requests"])
    print(f"| {c} | {g['throughput_rps']:.0f} | {gl['p50']:.2f} | {gl['p99']:.2f} | "
          f"{s['throughput_rps']:.0f} | {sl['p50']:.2f} | {sl['p99']:.2f} | {errors} | "
          f"{i['throughput_rps']:.0f} | {il['p50']:.2f} | {il['p99']:.2f} | "
          f"{g['throughput_rps']/i['throughput_rps']:.0%} | {s['throughput_rps']/i['throughput_rps']:.0%} | "
          f"{gs:.3f} | {gc:.3f} | {ss:.3f} | {sc:.3f} | {inproc_ms:.3f} |")
print(f"\nServer peak RSS (VmHWM) over the run: {rss_kb/1024:.0f} MiB. CPU ms/query: user + system CPU "
      "of each process during the level divided by its queries; server minus in-process is what gRPC "
      "costs the server, the client columns what the load generator takes from the same 2 cores.")
PY
{
  echo "## Search: gRPC vs in-process"
  echo
  echo "Command: \`bench/search_compare.sh $bundle $build $seconds\` (run $(date -u +%F) on $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ *//"))"
  echo
  cat "$tmp/table.md"
} | tee "$out"
