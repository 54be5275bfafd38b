#!/usr/bin/env bash
# Times core/image + core/data (bench/image_bench.cc) beside Pillow + NumPy
# (bench/image_reference.py) on the same inputs and writes the table to
# bench/results/image.md. Usage: bench/image_compare.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fmnist=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
cmake --build "$build" --target image_bench -j2 >/dev/null
inputs=$(mktemp -d)
trap 'rm -rf "$inputs"' EXIT
"$build/bench/image_bench" --write_inputs="$inputs" --fashion_mnist="$fmnist" >"$inputs/ours.tsv"
/usr/bin/python3 bench/image_reference.py "$inputs" "$fmnist" >"$inputs/pillow.tsv"
mkdir -p bench/results
{
  echo "# core/image and core/data: per-operation CPU time"
  echo
  echo "Command: \`bench/image_compare.sh $build\` ($(date -u +%Y-%m-%d), $(nproc) cores,"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)). CPU time per call, best of"
  echo "3 rounds, single-threaded. Reference: Pillow $(/usr/bin/python3 -c 'import PIL; print(PIL.__version__)') + NumPy"
  echo "(convert(\"L\"), resize BOX, float normalise; gzip + frombuffer for IDX)."
  echo "ratio = embedsearch / Pillow: below 1 means embedsearch is faster."
  echo
  echo "| operation | embedsearch (us) | Pillow/NumPy (us) | ratio |"
  echo "|---|---:|---:|---:|"
  join -t $'\t' <(sort "$inputs/ours.tsv") <(sort "$inputs/pillow.tsv") |
    awk -F'\t' '{ printf "| %s | %.1f | %.1f | %.2fx |\n", $1, $2, $3, $2 / $3 }'
} >bench/results/image.md
cat bench/results/image.md
