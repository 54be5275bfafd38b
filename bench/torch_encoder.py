#!/usr/bin/python3
"""Our encoders in PyTorch (Debian's python3-torch) with the same layers,
timed like bench/nn_bench.cc, and the side-by-side comparison table:
the reference network (28x28x1, the trainer's fmnist-small) and the
colour-small preset (64x64x3: conv+BN+ReLU stages, a residual block with a
projection shortcut, global average pooling). GFLOP/s counts the
multiply-adds of conv and linear layers (2 FLOPs each; training = 3x the
forward: forward, input gradient, weight gradient) against the machine's
peak (cores x clock x 32 FP32 FLOPs/cycle: two 8-wide AVX2 FMA units).

  /usr/bin/python3 bench/torch_encoder.py --ours build-nn/bench/nn_bench \
      --out bench/results/nn.md

For each thread count it runs our binary, then PyTorch, case by case, so both
see the same machine load; prints a markdown table and writes it (with the
command line) to --out. Without --ours it only prints PyTorch's JSON lines.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NOTES_MARKER = "<!-- notes: kept by torch_encoder.py -->"
CASES = ["encode_b1", "encode_b256", "train_sgd", "train_adam"]
# Training batch per model: colour-small steps are ~40x the reference's work.
TRAIN_BATCH = {"reference": 128, "colour-small": 32}


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv1 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv0(x)), 2)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return F.normalize(self.fc2(x), dim=1)


class Residual(nn.Module):
    """Basic block with a 1x1 conv + BN projection shortcut."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = nn.Conv2d(cin, cout, 1, bias=False)
        self.proj_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.proj_bn(self.proj(x)))


class ColourSmall(nn.Module):
    """--arch colour-small at 64x64x3: c32,p,c64,p,r128,p,gap,fc64."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(32)
        self.conv1 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.res0 = Residual(64, 128)
        self.fc1 = nn.Linear(128, 64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn0(self.conv0(x))), 2)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(self.res0(x), 2)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return F.normalize(self.fc1(x), dim=1)


MODELS = {"reference": (Encoder, (1, 28, 28)), "colour-small": (ColourSmall, (3, 64, 64))}


def forward_flops(model_name):
    """FLOPs of one image's forward pass (conv and linear multiply-adds x 2)."""
    cls, shape = MODELS[model_name]
    model = cls().eval()
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += 2 * out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += 2 * m.in_features * m.out_features
    for m in model.modules():
        m.register_forward_hook(hook)
    with torch.inference_mode():
        model(torch.zeros(1, *shape))
    return total[0]


def peak_gflops(threads):
    """threads x clock x 32 FP32 FLOPs/cycle (AVX2: 2 FMA units x 8 lanes x 2)."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = next(float(l.split(":", 1)[1]) for l in f if l.startswith("cpu MHz"))
    except (OSError, StopIteration):
        return float("nan")
    return threads * mhz * 1e-3 * 32


MIN_REPS = [5]  # --min_reps


def measure(name, threads, items, seconds, fn):
    for _ in range(3):
        fn()
    ms = []
    c0 = time.process_time()
    start = time.perf_counter()
    while len(ms) < MIN_REPS[0] or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    cpu_ms = (time.process_time() - c0) * 1000.0 / len(ms)
    med = statistics.median(ms)
    return {"name": name, "threads": threads, "ms": med,
            "ms_mean": statistics.fmean(ms), "items_per_s": items * 1000.0 / med,
            "cpu_ms": cpu_ms, "reps": len(ms)}


def torch_runner(model_name, case, threads):
    """Returns (items, fn) for one case; the model lives across rounds."""
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cls, shape = MODELS[model_name]
    model = cls()
    x = torch.randn(256, *shape)
    if case.startswith("encode"):
        n = 1 if case == "encode_b1" else 256
        xb = x[:n].contiguous()
        model.eval()

        def fn():
            with torch.inference_mode():
                model(xb)
        return n, fn
    model.train()
    opt = (torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
           if "sgd" in case else torch.optim.Adam(model.parameters(), lr=1e-3))
    batch = TRAIN_BATCH[model_name]
    xb = x[:batch].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        y = model(xb)
        (y * y).sum().backward()
        opt.step()
    return batch, step


def torch_case(model_name, case, threads, seconds):
    items, fn = torch_runner(model_name, case, threads)
    return measure(case, threads, items, seconds, fn)


def combine(results):
    """Median over rounds of each round's median (and mean CPU time)."""
    out = dict(results[0])
    out["ms"] = statistics.median(r["ms"] for r in results)
    out["cpu_ms"] = statistics.fmean(r["cpu_ms"] for r in results)
    out["items_per_s"] = results[0]["items_per_s"] * results[0]["ms"] / out["ms"]
    out["reps"] = sum(r["reps"] for r in results)
    return out


def ours_case(binary, model_name, case, threads, seconds):
    out = subprocess.run([binary, f"--threads={threads}", f"--seconds={seconds}",
                          f"--cases={case}", f"--model={model_name}",
                          f"--train_batch={TRAIN_BATCH[model_name]}",
                          f"--min_reps={MIN_REPS[0]}"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", help="path to the nn_bench binary")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="reference,colour-small")
    ap.add_argument("--min_reps", type=int, default=5,
                    help="minimum timed calls per round (colour-small b256 is slow)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds per case (seconds split over them)")
    ap.add_argument("--out", help="markdown file to write")
    args = ap.parse_args()
    threads_list = [int(t) for t in args.threads.split(",")]
    MIN_REPS[0] = args.min_reps
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())

    rows = []
    for model_name in args.models.split(","):
        for t in threads_list:
            for case in CASES:
                if not args.ours:
                    print(json.dumps(torch_case(model_name, case, t, args.seconds)))
                    continue
                # Alternate short rounds of ours and PyTorch so both sample
                # the same (shared, noisy) machine load.
                items, fn = torch_runner(model_name, case, t)
                per_round = args.seconds / args.rounds
                mine, theirs = [], []
                for _ in range(args.rounds):
                    mine.append(ours_case(args.ours, model_name, case, t, per_round))
                    torch.set_num_threads(t)
                    theirs.append(measure(case, t, items, per_round, fn))
                mine, theirs = combine(mine), combine(theirs)
                mine["name"] = theirs["name"] = (
                    f"{case}_b{items}" if case.startswith("train") else case)
                rows.append((model_name, t, mine, theirs))
                print(f"{model_name} {case} threads={t}: ours {mine['ms']:.3f} ms, "
                      f"torch {theirs['ms']:.3f} ms", file=sys.stderr)
    if not args.ours:
        return

    lines = [
        "| model | case | threads | embedsearch ms | PyTorch ms | embedsearch items/s | "
        "PyTorch items/s | speed-up | goal | embedsearch GFLOP/s | PyTorch GFLOP/s | "
        "peak GFLOP/s | embedsearch CPU ms | PyTorch CPU ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    flops = {}
    for model_name, t, m, p in rows:
        case = m["name"]
        if model_name not in flops:
            flops[model_name] = forward_flops(model_name)
        per_item = flops[model_name] * (3 if case.startswith("train") else 1)
        speedup = p["ms"] / m["ms"]
        need = 3.0 if case == "encode_b1" else 1.5
        goal = ("latency <= 1/3 of PyTorch" if case == "encode_b1"
                else ">= 1.5x PyTorch throughput")
        verdict = "met" if speedup >= need else "not met"
        lines.append(f"| {model_name} | {case} | {t} | {m['ms']:.3f} | {p['ms']:.3f} | "
                     f"{m['items_per_s']:.0f} | {p['items_per_s']:.0f} | "
                     f"{speedup:.2f}x | {goal}: {verdict} | "
                     f"{per_item * m['items_per_s'] * 1e-9:.1f} | "
                     f"{per_item * p['items_per_s'] * 1e-9:.1f} | {peak_gflops(t):.0f} | "
                     f"{m['cpu_ms']:.2f} | {p['cpu_ms']:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        cmd = os.environ.get("NN_COMPARE_COMMAND", " ".join(["/usr/bin/python3"] + sys.argv))
        cpu = "unknown"
        try:
            with open("/proc/cpuinfo") as f:
                cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        except (OSError, StopIteration):
            pass
        # Hand-written analysis below the marker survives re-runs.
        notes = ""
        if os.path.exists(args.out):
            with open(args.out) as f:
                old = f.read()
            if NOTES_MARKER in old:
                notes = old[old.index(NOTES_MARKER):]
        with open(args.out, "w") as f:
            f.write("# core/nn: encoders vs PyTorch (reference and colour-small)\n\n")
            f.write(f"Command: `{cmd}`\n\n")
            f.write(f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                    f"{cpu}, {os.cpu_count()} cores, PyTorch {torch.__version__}, "
                    f"Python {platform.python_version()}; load average before the run "
                    f"{load}. Each case: {args.rounds} alternating rounds of ours "
                    f"and PyTorch, {args.seconds / args.rounds:g} s each; ms = median "
                    f"over rounds of the per-round median wall time per call; CPU "
                    f"ms = process CPU time per call (all threads, including "
                    f"spinning).\n\n")
            f.write(table + "\n")
            if notes:
                f.write("\n" + notes)


if __name__ == "__main__":
    main()
