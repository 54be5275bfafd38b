#!/usr/bin/env bash
# Replicas on a shared PostgreSQL catalog vs one server on SQLite: runs
# BUILD_DIR/bench/replication_bench (bench/replication_bench.cc: a
# throw-away PostgreSQL 15, one SQLite server, three replicas; adds/s,
# searches/s, replication lag, a 100k-item bulk load followed live and the
# start-up of a replica on the grown catalog) and writes its table, with
# the command, date, CPU and load average, to bench/results/replication.md
# (and prints it). bench/notes/replication.md holds the analysis.
#
# Usage: bench/replication.sh [BUILD_DIR] [replication_bench flags...]
#   e.g. bench/replication.sh build --catchup_items=10000 --lag_seconds=5
# Takes about 2 min on 2 cores; wants a quiet machine (the load average
# before and after is printed in the result).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true
bench=$build/bench/replication_bench
out=bench/results/replication.md
[[ -x $bench ]] || { echo "bench/replication.sh: no $bench (build target replication_bench)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

load() { cut -d' ' -f1 /proc/loadavg; }
load_before=$(load)
started=$(date -u '+%Y-%m-%d %H:%M UTC')
"$bench" "$@" >"$tmp/table.md"
load_after=$(load)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=${*:+ $*}

{
  echo "## Replicas on PostgreSQL: writes, searches and replication lag"
  echo
  echo "Command: \`bench/replication.sh $build$flags\` (\`$bench\`, bench/replication_bench.cc), $started, on"
  echo "$(nproc) cores of $cpu, load average $load_before before and $load_after after. One run starts a"
  echo "throw-away PostgreSQL 15 (fsync off, like the tests), one server on a SQLite bundle and three"
  echo "replicas on the same gallery published into PostgreSQL (300 Fashion-MNIST images, Flat, untrained"
  echo "encoder, \`--threads=1\` each), then alternates SQLite and PostgreSQL rounds with one client each."
  echo "The lag run: a writer adds through replica 0 as fast as it is acknowledged, a watcher repeatedly"
  echo "takes the newest acknowledged id and measures how long until replica 2 finds it by search. Then"
  echo "the bulk load is committed straight into the catalog (batches of 1000) while the replicas follow,"
  echo "and a fourth replica starts on the grown catalog."
  echo
  cat "$tmp/table.md"
} >"$out"
cat "$out"
echo "wrote $out"
