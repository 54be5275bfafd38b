#!/usr/bin/env bash
# Unseen-class retrieval on the emoji data set, side by side in one run:
# the raw-pixel floor, our trainer with the emoji recipe (docs/training.md),
# PyTorch with the same network, loss, sampler, augmentation and schedule on
# the same split for the same number of steps (bench/torch_trainer.py
# --split), and our trainer with each of the card's losses. Everything is
# measured on the held-out half (--holdout_classes 0.5 --seed 1: 929
# classes, 3716 images), leave-one-out among the held-out images.
# Writes bench/results/emoji.md (analysis: bench/notes/emoji.md).
#
# Usage: bench/emoji_compare.sh [BUILD_DIR] [OUT_DIR] [EPOCHS] [LOSS_EPOCHS]
#   BUILD_DIR    default build (needs embedsearch-trainer, bench/split_export,
#                bench/holdout_pixel_baseline: -DEMBEDSEARCH_BUILD_BENCH=ON)
#   OUT_DIR      default out/bench-emoji (work dirs, logs)
#   EPOCHS       ours vs PyTorch, default 50 (the recipe)
#   LOSS_EPOCHS  each loss's run, default 10
# A stage whose output already holds a finished run of the same command is
# not run again (delete OUT_DIR to redo everything).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
root=${2:-out/bench-emoji}
epochs=${3:-50}
loss_epochs=${4:-10}
data=out/datasets/emoji
python=/usr/bin/python3
trainer="$build/trainer/embedsearch-trainer"
mkdir -p "$root"
say() { printf '== %s (%s, load average %s)\n' "$1" "$(date -u +%T)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

[[ -d $data ]] || scripts/datasets/emoji --out "$data"

# The trainer's own split, fitting and mean/std, for the PyTorch peer; at
# 64x64 too for the metric check on raw pixels.
say "split export"
"$build/bench/split_export" --data "$data" --input 32x32x3 --holdout_classes 0.5 --seed 1 --out "$root/split"
"$build/bench/split_export" --data "$data" --input 64x64x3 --holdout_classes 0.5 --seed 1 --out "$root/split64"

say "raw-pixel floor"
"$build/bench/holdout_pixel_baseline" --data "$data" --holdout_classes 0.5 --seed 1 >"$root/floor.md"
$python bench/torch_trainer.py --pixel_floor "$root/split64" >"$root/floor64_numpy.json"
$python bench/torch_trainer.py --pixel_floor "$root/split" >"$root/floor32_numpy.json"

recipe=(--data "$data" --holdout_classes 0.5 --input 32x32x3 --arch colour-small
        --classes-per-batch 32 --images-per-class 4 --augment --augment_flip=false
        --augment_crop_min_area 0.7 --augment_jitter 0.2)

# run_ours NAME THREADS EPOCHS [EXTRA FLAGS...]: one training in $root/NAME.
run_ours() {
  local name=$1 threads=$2 n=$3 dir="$root/$1" cmd start
  shift 3
  cmd="embedsearch-trainer ${recipe[*]} --epochs $n --eval_every 10 --threads $threads $* --out= --work_dir=$dir"
  if [[ -f $dir/command && $(cat "$dir/command") == "$cmd" && -f $dir/wall_seconds ]]; then return; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  cut -d' ' -f1-3 /proc/loadavg >"$dir/load_before"
  start=$EPOCHREALTIME
  "$trainer" "${recipe[@]}" --epochs "$n" --eval_every 10 --threads "$threads" "$@" \
    --out= --work_dir="$dir" --quiet
  $python -c "print(round($EPOCHREALTIME - $start, 1))" >"$dir/wall_seconds"
  echo "$cmd" >"$dir/command"
}

run_torch() {
  local dir="$root/torch" cmd start
  cmd="bench/torch_trainer.py --split $root/split --epochs $epochs --eval_every 10 --threads 2"
  if [[ -f $dir/command && $(cat "$dir/command") == "$cmd" && -f $dir/result.json ]]; then return; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  cut -d' ' -f1-3 /proc/loadavg >"$dir/load_before"
  $python bench/torch_trainer.py --split "$root/split" --epochs "$epochs" --eval_every 10 \
    --threads 2 >"$dir/result.json.tmp" 2>"$dir/log"
  mv "$dir/result.json.tmp" "$dir/result.json"
  echo "$cmd" >"$dir/command"
}

say "ours, triplet recipe, $epochs epochs, 2 threads"
run_ours ours 2 "$epochs"
if ! diff -q <(grep -v '^#' "$root/ours/held_out_classes.txt") \
             <(grep -v '^#' "$root/split/held_out_classes.txt") >/dev/null; then
  echo "emoji_compare: the trainer's held-out classes differ from split_export's" >&2
  exit 1
fi
say "PyTorch, the same recipe, $epochs epochs, 2 threads"
run_torch

# The losses: two runs at a time with one thread each (on 2 cores this
# beats one run with 2 threads; bench/trainer_losses.sh does the same).
# Margins and mining are each loss's default; nll is the best EBM loss of
# the Fashion-MNIST table (with its beta there).
say "every loss, $loss_epochs epochs, two at a time, 1 thread each"
run_ours loss-triplet 1 "$loss_epochs" --loss=triplet & a=$!
run_ours loss-cosine 1 "$loss_epochs" --loss=cosine & b=$!
wait $a; wait $b
run_ours loss-hinge-embedding 1 "$loss_epochs" --loss=hinge-embedding & a=$!
run_ours loss-nll 1 "$loss_epochs" --loss=nll --beta=16 & b=$!
wait $a; wait $b
say "done"

$python - "$root" "$epochs" "$loss_epochs" "$build" "$(date -u '+%Y-%m-%d %H:%M')" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" <<'PY' >bench/results/emoji.md
import json, re, sys
root, epochs, loss_epochs, build, when, cpu = sys.argv[1:]

def ours(name):
    d = f"{root}/{name}"
    rows = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if l.strip()]
    held = [r for r in rows if "held_out" in r]
    return {"m": held[-1]["held_out"], "curve": [(r["epoch"], r["held_out"]["precision_at_1"]) for r in held],
            "train": sum(r["seconds"] for r in rows), "wall": float(open(f"{d}/wall_seconds").read()),
            "steps": rows[-1]["global_step"], "load": open(f"{d}/load_before").read().strip(),
            "command": open(f"{d}/command").read().strip()}

def torch_peer():
    d = f"{root}/torch"
    r = json.loads(open(f"{d}/result.json").read().strip().splitlines()[-1])
    return {"m": r["held_out"], "curve": [(e["epoch"], e["precision_at_1"]) for e in r["evaluations"]],
            "train": r["train_seconds"], "wall": r["wall_seconds"], "steps": r["steps"],
            "load": open(f"{d}/load_before").read().strip(), "torch": r["torch"],
            "command": open(f"{d}/command").read().strip()}

floor = {}
for line in open(f"{root}/floor.md"):
    m = re.match(r"\| (RGB 64x64|RGB 32x32) \| \d+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
    if m:
        floor[m.group(1)] = [float(x) for x in m.groups()[1:]]
numpy64 = json.load(open(f"{root}/floor64_numpy.json"))
base = floor["RGB 64x64"][0]

def row(name, n, m, extra=""):
    v = [m["precision_at_1"], m["recall_at_5"], m["recall_at_10"], m["map_at_r"]]
    return (f"| {name} | {n} | " + " | ".join(f"{x:.4f}" for x in v) +
            f" | {v[0] / base:.2f}x |{extra}")

o, t = ours("ours"), torch_peer()
print("## Emoji, unseen classes: ours vs PyTorch, raw pixels and every loss")
print()
print(f"Command: `bench/emoji_compare.sh {build} {root} {epochs} {loss_epochs}` ({when} UTC, {cpu}, 2 cores shared")
print("with other engineers' builds and tests: the load average before each run is given; the seconds are those of")
print("that machine). Data: `scripts/datasets/emoji` (emoji-datasource-* 16.0.0: 1857 emoji drawn by Apple, Google,")
print("Twitter and Facebook, 64x64 on white, one class per emoji). Split: the trainer's `--holdout_classes 0.5 --seed 1`")
print("(929 classes, 3716 images held out; 928 seen classes: 2784 training images). Metrics: leave-one-out retrieval")
print("among the held-out images (each queries the other 3715, R = 3), squared L2, after the last epoch.")
print()
print(f"Recipe (docs/training.md, \"The emoji recipe\", at {epochs} epochs): `embedsearch-trainer --data out/datasets/emoji")
print("--holdout_classes 0.5 --input 32x32x3 --arch colour-small --classes-per-batch 32 --images-per-class 4 --augment")
print(f"--augment_flip=false --augment_crop_min_area 0.7 --augment_jitter 0.2 --epochs {epochs} --eval_every 10 --threads 2 --out=`.")
print("PyTorch: `bench/torch_trainer.py --split` on `build/bench/split_export`'s copy of the trainer's split (same images")
print("fitted to 32x32, same per-channel mean/std), the same network (c32,p,c64,p,r128,p,gap,fc64, L2), PK 32x4, batch-all")
print("triplet margin 0.2 on pairwise_distance, Adam 2e-3 with 100 warm-up steps + cosine, the same steps; augmentation")
print("with the same distributions but numpy's random draws and Pillow's bilinear resize.")
print()
print("| encoder (held-out half, 3716 queries) | epochs | P@1 | R@5 | R@10 | MAP@R | x floor P@1 | train s | wall s | load before |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for name in ("RGB 64x64", "RGB 32x32"):
    f = floor[name]
    floor_row = dict(zip(["precision_at_1", "recall_at_5", "recall_at_10", "map_at_r"], f))
    label = "raw pixels " + name + (" (**the floor**)" if name == "RGB 64x64" else "")
    print(row(label, "-", floor_row, " - | - | - |"))
print(row(f"ours, triplet recipe ({o['steps']} steps)", epochs, o["m"],
          f" {o['train']:.0f} | {o['wall']:.0f} | {o['load']} |"))
print(row(f"PyTorch {t['torch']}, the same recipe ({t['steps']} steps)", epochs, t["m"],
          f" {t['train']:.0f} | {t['wall']:.0f} | {t['load']} |"))
print()
print("Held-out P@1 at each evaluation (epoch: ours / PyTorch): " + ", ".join(
    f"{e}: {a:.4f} / {b:.4f}" for (e, a), (_, b) in zip(o["curve"], t["curve"])) + ".")
print(f"The numpy metric of the PyTorch side on the floor's raw RGB 64x64 pixels gives P@1 {numpy64['precision_at_1']:.4f},")
print(f"R@5 {numpy64['recall_at_5']:.4f}, R@10 {numpy64['recall_at_10']:.4f}, MAP@R {numpy64['map_at_r']:.4f}: the trainer's numbers.")
print()
print(f"Every loss, ours, {loss_epochs} epochs each (its own warm-up + cosine schedule over those epochs), two runs at a time")
print("with `--threads 1` each; margins and mining are each loss's default (docs/training.md): triplet batch-all 0.2,")
print("cosine semi-hard 0.7, hinge-embedding semi-hard 0.4 (one epoch of batch-all first); nll = the EBM loss (softmax")
print("over the batch's answers) with the beta of its Fashion-MNIST row.")
print()
print("| loss | epochs | P@1 | R@5 | R@10 | MAP@R | x floor P@1 | train s | wall s | load before | flags beyond the recipe |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for loss in ("triplet", "cosine", "hinge-embedding", "nll"):
    r = ours("loss-" + loss)
    flags = r["command"].split("--threads 1 ", 1)[1].replace(" --out=", "").split(" --work_dir")[0]
    print(row(loss, loss_epochs, r["m"], f" {r['train']:.0f} | {r['wall']:.0f} | {r['load']} | `{flags}` |"))
PY
echo "wrote bench/results/emoji.md"
