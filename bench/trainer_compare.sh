#!/usr/bin/env bash
# Training speed and time-to-quality, written to bench/results/trainer-speed.md:
#  - images/s of embedsearch-trainer's default recipe (PK 10x16, batch-all
#    triplet, augmentation, Adam) vs the same recipe in Debian's python3-torch
#    (bench/torch_trainer.py), 1 and 2 threads, alternating in one run;
#  - time to precision@1 0.90 and 0.93 from a default-recipe run's
#    metrics.jsonl (WORK_DIR; trained here with --threads 2 if it has none).
# Usage: bench/trainer_compare.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-out/bench-train}
trainer="$build/trainer/embedsearch-trainer"
steps=60
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ours() {  # threads -> images/s of one epoch of $steps steps, no evaluation
  rm -rf "$tmp/w"
  "$trainer" --threads "$1" --epochs 1 --train_limit $((steps * 160)) --test_limit 1000 \
    --eval_every 0 --out= --work_dir "$tmp/w" --quiet >/dev/null 2>&1
  /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["images_per_second"])' \
    "$tmp/w/metrics.jsonl"
}
theirs() {
  /usr/bin/python3 bench/torch_trainer.py --threads "$1" --steps $steps |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])'
}

rows=""
for threads in 1 2; do
  o1=$(ours "$threads"); t1=$(theirs "$threads"); o2=$(ours "$threads"); t2=$(theirs "$threads")
  rows+=$(/usr/bin/python3 -c 'import sys; t,o1,t1,o2,t2=sys.argv[1],*map(float,sys.argv[2:])
o=max(o1,o2); p=max(t1,t2)
print(f"| {t} | {o:.0f} | {p:.0f} | {o/p:.2f}x |")' "$threads" "$o1" "$t1" "$o2" "$t2")$'\n'
done

if [[ ! -s $work/metrics.jsonl ]]; then
  rm -rf "$work"
  start=$(date +%s)
  "$trainer" --threads 2 --out= --work_dir "$work" --quiet
  echo "$(( $(date +%s) - start ))" >"$work/wall_seconds"
fi

{
  echo "## Training: speed vs PyTorch and time to quality"
  echo
  echo "Command: \`bench/trainer_compare.sh $build $work\` ($(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, load average before: $(cut -d' ' -f1-3 /proc/loadavg))."
  echo
  echo "Images/s of the default recipe (PK batches 10x16 of real Fashion-MNIST, flip+shift augmentation, batch-all"
  echo "triplet margin 0.2, Adam; data preparation included), $steps steps after warm-up; best of 2 alternating"
  echo "rounds. PyTorch side: \`bench/torch_trainer.py\` (same network with batch norm, same batches and loss)."
  echo
  echo "| threads | embedsearch-trainer img/s | PyTorch img/s | speed-up |"
  echo "|---:|---:|---:|---:|"
  printf '%s' "$rows"
  echo
  /usr/bin/python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
rows = [json.loads(l) for l in open(f"{work}/metrics.jsonl") if l.strip()]
wall = open(f"{work}/wall_seconds").read().strip() if os.path.exists(f"{work}/wall_seconds") else None
print(f"Time to quality: default recipe (`embedsearch-trainer --threads 2`), 10k test queries vs the 60k train")
print("gallery after each epoch; training seconds are cumulative and exclude the per-epoch evaluation.\n")
print("| target P@1 | reached at epoch | training seconds | P@1 then |")
print("|---:|---:|---:|---:|")
for target in (0.90, 0.93):
    t = 0.0; hit = None
    for r in rows:
        t += r["seconds"]
        if r.get("precision_at_1", 0) >= target:
            hit = (r["epoch"], t, r["precision_at_1"]); break
    if hit:
        print(f"| {target:.2f} | {hit[0]} | {hit[1]:.0f} | {hit[2]:.4f} |")
    else:
        best = max(r.get("precision_at_1", 0) for r in rows)
        print(f"| {target:.2f} | not reached in {len(rows)} epochs | {t:.0f} | best {best:.4f} |")
if wall:
    print(f"\nWhole run (training, every evaluation): {int(wall)/60:.1f} min wall.")
PY
} | tee bench/results/trainer-speed.md
