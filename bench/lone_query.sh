#!/usr/bin/env bash
# The lone query: Search at concurrency 1 (and 16, for throughput) against
# two server binaries, alternating A, B, A, B ... so a shared, noisy machine
# hurts both alike, next to the in-process cost of the same queries
# (search_inprocess_bench at concurrency 1). Per binary and round: client
# p50/p99 and req/s (embedsearch-client bench), the server's own Search p50
# (GetInfo), its CPU per query, and, when the binary has --metrics_address,
# the mean of every search stage (embedsearch_search_stage_duration_seconds).
# Writes a markdown table of the medians over the rounds to
# bench/results/lone-query.md (and prints it); bench/notes/lone-query.md
# holds the analysis.
# Usage: bench/lone_query.sh BUNDLE SERVER_A SERVER_B [INPROC_BENCH] [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/serving.sh
bundle=${1:?usage: bench/lone_query.sh BUNDLE SERVER_A SERVER_B [INPROC_BENCH] [ROUNDS] [SECONDS]}
servers=("${2:?}" "${3:?}")
inproc=${4:-build/bench/search_inprocess_bench}
rounds=${5:-5}
seconds=${6:-4}
client_bin=build/client/embedsearch-client
tmp=$(mktemp -d)
out=bench/results/lone-query.md
trap 'rm -rf "$tmp"' EXIT

# One server run: writes $tmp/<variant>-<round>.{c1,c16,info,cpu,m0,m1}.
run_server() {
  local variant=$1 round=$2 bin=$3 port=$((20000 + RANDOM % 20000))
  local out=$tmp/$variant-$round metrics=()
  # (--helpfull exits 1; no grep -q: an early exit would SIGPIPE under pipefail)
  if { "$bin" --helpfull 2>&1 || true; } | grep -- --metrics_address >/dev/null; then
    metrics=(--metrics_address "127.0.0.1:$((port + 1))")
  fi
  "$bin" --bundle "$bundle" --address "127.0.0.1:$port" --log_format none "${metrics[@]}" 2>/dev/null &
  local pid=$!
  local client=("$client_bin" --server "127.0.0.1:$port")
  wait_serving "$pid" "${client[@]}"
  "${client[@]}" bench --concurrency 1 --duration 1 --warmup 20 >/dev/null
  scrape() { if [[ ${#metrics[@]} -gt 0 ]]; then /usr/bin/python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" "http://127.0.0.1:$((port + 1))/metrics"; fi; }
  scrape >"$out.m0"
  local cpu0
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  "${client[@]}" bench --concurrency 1 --duration "$seconds" --json >"$out.c1"
  awk -v c0="$cpu0" -v tck="$(getconf CLK_TCK)" '{print ($14 + $15 - c0) / tck}' "/proc/$pid/stat" >"$out.cpu"
  scrape >"$out.m1"
  "${client[@]}" info --json >"$out.info"
  "${client[@]}" bench --concurrency 16 --duration "$seconds" --json >"$out.c16"
  kill -TERM "$pid"
  wait "$pid" || true
}

for round in $(seq "$rounds"); do
  run_server a "$round" "${servers[0]}"
  run_server b "$round" "${servers[1]}"
  "$inproc" --bundle "$bundle" --duration "$seconds" --concurrency 1 --json 2>/dev/null >"$tmp/inproc-$round"
done

/usr/bin/python3 - "$tmp" "$rounds" "${servers[@]}" >"$tmp/table.md" <<'PY'
import json, re, statistics, sys
tmp, rounds, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
stages = ["queue_wait", "decode", "encode", "index_search", "catalog_read", "response"]
def stage_means(path0, path1):
    def read(path):
        d = {}
        for line in open(path):
            m = re.match(r'embedsearch_search_stage_duration_seconds_(sum|count)\{stage="(\w+)"\} (\S+)', line)
            if m: d[(m.group(2), m.group(1))] = float(m.group(3))
        return d
    a, b = read(path0), read(path1)
    if not b: return None
    return {s: 1000 * (b[(s, "sum")] - a.get((s, "sum"), 0)) / max(1, b[(s, "count")] - a.get((s, "count"), 0)) for s in stages}
med = statistics.median
rows = []
for v, name in zip("ab", names):
    runs = []
    for r in range(1, rounds + 1):
        p = f"{tmp}/{v}-{r}"
        c1, c16, info = json.load(open(f"{p}.c1")), json.load(open(f"{p}.c16")), json.load(open(f"{p}.info"))
        search = [s for s in info.get("stats", []) if s["method"] == "Search"][0]
        runs.append(dict(c1=c1, c16=c16, server_p50=search["p50_ms"],
                         cpu=1000 * float(open(f"{p}.cpu").read()) / max(1, c1["requests"]),
                         stages=stage_means(f"{p}.m0", f"{p}.m1"),
                         errors=sum(c1["errors"].values()) + sum(c16["errors"].values())))
    rows.append((name, runs))
inproc = [json.loads(open(f"{tmp}/inproc-{r}").readline()) for r in range(1, rounds + 1)]
inproc_p50 = med(i["latency_ms"]["p50"] for i in inproc)
print(f"Medians over {rounds} alternating rounds; in-process (search_inprocess_bench, concurrency 1) p50 "
      f"{inproc_p50:.3f} ms, {med(i['throughput_rps'] for i in inproc):.0f} req/s.\n")
print("| server | client p50 ms | client p99 ms | c=1 req/s | server Search p50 ms | server p50 / in-process | server CPU ms/query (c=1) | c=16 req/s | c=16 p50 ms | errors | " +
      " | ".join(f"{s} ms" for s in stages) + " |")
print("|---|" + "---:|" * (9 + len(stages)))
for name, runs in rows:
    sp50 = med(r["server_p50"] for r in runs)
    st = [r["stages"] for r in runs if r["stages"]]
    cells = [f"{med(s[k] for s in st):.3f}" if st else "-" for k in stages]
    print(f"| `{name}` | {med(r['c1']['latency_ms']['p50'] for r in runs):.3f} | {med(r['c1']['latency_ms']['p99'] for r in runs):.3f} | "
          f"{med(r['c1']['throughput_rps'] for r in runs):.0f} | {sp50:.3f} | {sp50 / inproc_p50:.2f}x | {med(r['cpu'] for r in runs):.3f} | "
          f"{med(r['c16']['throughput_rps'] for r in runs):.0f} | {med(r['c16']['latency_ms']['p50'] for r in runs):.3f} | "
          f"{sum(r['errors'] for r in runs)} | " + " | ".join(cells) + " |")
print("\nPer round (client p50 ms at c=1, a / b): " +
      ", ".join(f"{a['c1']['latency_ms']['p50']:.2f}/{b['c1']['latency_ms']['p50']:.2f}" for a, b in zip(rows[0][1], rows[1][1])))
PY
{
  echo "## Search: the lone query (concurrency 1), per stage"
  echo
  echo "Command: \`bench/lone_query.sh $bundle ${servers[*]} $inproc $rounds $seconds\` (run $(date -u +%F) on $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ *//"))"
  echo
  cat "$tmp/table.md"
} | tee "$out"
