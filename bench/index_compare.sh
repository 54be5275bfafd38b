#!/usr/bin/env bash
# Index table: recall@10 vs exact search and queries/s for each FAISS spec on
# the 60k gallery of a trained bundle (its real embeddings), then latency and
# memory against gallery size (60k, 240k, 1M synthetic vectors).
# Writes bench/results/index.md. Usage: bench/index_compare.sh [BUILD] [BUNDLE]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bundle=${2:-out/bundle}
cmake --build "$build" --target index_bench -j2 >/dev/null
{
  echo "## Index: FAISS specs on the 60k gallery, and scaling"
  echo
  echo "Command: \`bench/index_compare.sh $build $bundle\` ($(date -u '+%Y-%m-%d') UTC, $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg))."
  echo "Through our VectorIndex wrapper (what the server calls). Queries: every 6th gallery item (each"
  echo "also finds itself, so recall is slightly optimistic for every spec alike)."
  echo
  "$build/bench/index_bench" --bundle_catalog "$bundle/catalog.db"
} | tee bench/results/index.md
