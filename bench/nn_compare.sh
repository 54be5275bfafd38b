#!/bin/sh
# Builds nn_bench and runs it side by side with PyTorch, writing the table to
# bench/results/nn.md. Usage: bench/nn_compare.sh [build-dir] [seconds-per-case]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
seconds=${2:-3}
cmake --build "$build" --target nn_bench -j2 >/dev/null
mkdir -p "$root/bench/results"
NN_COMPARE_COMMAND="bench/nn_compare.sh $*" \
  /usr/bin/python3 "$root/bench/torch_encoder.py" --ours "$build/bench/nn_bench" \
  --seconds "$seconds" --out "$root/bench/results/nn.md"
