#!/bin/sh
# Builds nn_bench and runs it side by side with PyTorch (the reference
# network and the colour-small preset), writing the table to
# bench/results/nn.md.
# Usage: bench/nn_compare.sh [build-dir] [seconds-per-case] [torch_encoder.py args...]
# e.g. bench/nn_compare.sh build 1 --threads 2 --rounds 2 --min_reps 3
set -eu
command="bench/nn_compare.sh $*"
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
seconds=${2:-3}
[ $# -ge 2 ] && shift 2 || shift $#
cmake --build "$build" --target nn_bench -j2 >/dev/null
mkdir -p "$root/bench/results"
NN_COMPARE_COMMAND="$command" \
  /usr/bin/python3 "$root/bench/torch_encoder.py" --ours "$build/bench/nn_bench" \
  --seconds "$seconds" --out "$root/bench/results/nn.md" "$@"
