#!/usr/bin/env bash
# Time to quality of the default recipe and of --preset quality on
# Fashion-MNIST (10k test queries vs the 60k training gallery), written to
# bench/results/trainer-quality.md:
#  - trains both with --threads 2, one after the other (default first), into
#    OUT_DIR/default and OUT_DIR/quality; a work dir whose metrics.jsonl
#    already holds its last epoch is reused, one with a checkpoint is resumed;
#  - for P@1 0.90 and 0.93: the first evaluated epoch that reaches it, with
#    the cumulative training seconds, the trainer's process CPU seconds (and
#    half of them: what a quiet 2-core machine needs with both threads busy)
#    and wall minutes, from metrics.jsonl; the load average around each run.
# About 5 + 50 minutes on a quiet 2-core machine.
# Usage: bench/quality_preset.sh [BUILD_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-out/bench-quality}
trainer="$build/trainer/embedsearch-trainer"

train() {  # recipe flags... -> trains into $out/$recipe unless done
  local recipe=$1; shift
  local work="$out/$recipe"
  if [[ -s $work/metrics.jsonl ]] && [[ ! -f $work/checkpoint.bin || -f $work/done ]]; then
    return
  fi
  local resume=()
  [[ -f $work/checkpoint.bin ]] && resume=(--resume)
  mkdir -p "$work"
  echo "$trainer --threads 2 $* --out= --work_dir $work" >"$work/command"
  echo "before $(date -u '+%F %T') $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/load"
  "$trainer" --threads 2 "$@" --out= --work_dir "$work" --quiet "${resume[@]}"
  echo "after $(date -u '+%F %T') $(cut -d' ' -f1-3 /proc/loadavg)" >>"$work/load"
  touch "$work/done"
}

train default
train quality --preset quality

/usr/bin/python3 - "$out" <<'PY' | tee bench/results/trainer-quality.md
import json, os, sys
out = sys.argv[1]

def rows_of(recipe):
    rows = [json.loads(l) for l in open(f"{out}/{recipe}/metrics.jsonl") if l.strip()]
    total = 0.0
    for r in rows:  # metrics.jsonl of trainers before train_seconds_total
        total += r["seconds"]
        r.setdefault("train_seconds_total", total)
    return rows

def cpu(r):
    c = r.get("process_cpu_seconds")
    return f"{c:.0f} ({c / 2:.0f})" if c else "n/a"

def wall(r):
    w = r.get("wall_seconds")
    return f"{w / 60:.1f}" if w else "n/a"

def text(path):
    return open(path).read().strip() if os.path.exists(path) else "n/a"

print("### Training: the quality preset, time to quality\n")
print("Command: `bench/quality_preset.sh` (trains `embedsearch-trainer --threads 2` with the default")
print("recipe, then with `--preset quality`; 10k test queries vs the 60k training gallery). Training")
print("seconds are cumulative and exclude evaluations; CPU seconds are the trainer process's (all")
print("threads) at the end of the epoch including its evaluation, in brackets halved: what a quiet")
print("2-core machine needs with both threads busy; wall minutes since the trainer started.\n")
print("| recipe | target P@1 | reached at epoch | training s | CPU s (/2) | wall min | P@1 then |")
print("|---|---:|---:|---:|---:|---:|---:|")
finals = []
for recipe in ("default", "quality"):
    rows = rows_of(recipe)
    evaluated = [r for r in rows if "precision_at_1" in r]
    for target in (0.90, 0.93):
        hit = next((r for r in evaluated if r["precision_at_1"] >= target), None)
        if hit:
            print(f"| {recipe} | {target:.2f} | {hit['epoch']} | {hit['train_seconds_total']:.0f} | "
                  f"{cpu(hit)} | {wall(hit)} | {hit['precision_at_1']:.4f} |")
        else:
            last = rows[-1]
            best = (f"best {max(r['precision_at_1'] for r in evaluated):.4f}" if evaluated
                    else "not evaluated yet")
            print(f"| {recipe} | {target:.2f} | not reached in {last['epoch']} epoch"
                  f"{'s' if last['epoch'] > 1 else ''} | {last['train_seconds_total']:.0f} | "
                  f"{cpu(last)} | {wall(last)} | {best} |")
    curve = ", ".join(f"{r['epoch']}: {r['precision_at_1']:.4f}" for r in evaluated) or "none"
    finals.append(f"- {recipe}: `{text(f'{out}/{recipe}/command')}`; P@1 by epoch {curve}; "
                  f"load average {text(f'{out}/{recipe}/load')}".replace("\n", ", "))
print()
print("\n".join(finals))
PY
