#!/usr/bin/python3
"""The reference encoder in PyTorch (Debian's python3-torch), timed like
bench/nn_bench.cc, and the side-by-side comparison table.

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
CASES = ["encode_b1", "encode_b256", "train_sgd_b128", "train_adam_b128"]


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


def measure(name, threads, items, seconds, fn):
    for _ in range(3):
        fn()
    ms = []
    c0 = time.process_time()
    start = time.perf_counter()
    while len(ms) < 5 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    cpu_ms = (time.process_time() - c0) * 1000.0 / len(ms)
    med = statistics.median(ms)
    return {"name": name, "threads": threads, "ms": med,
            "ms_mean": statistics.fmean(ms), "items_per_s": items * 1000.0 / med,
            "cpu_ms": cpu_ms, "reps": len(ms)}


def torch_runner(case, threads):
    """Returns (items, fn) for one case; the model lives across rounds."""
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = Encoder()
    x = torch.randn(256, 1, 28, 28)
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
    xb = x[:128].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        y = model(xb)
        (y * y).sum().backward()
        opt.step()
    return 128, step


def torch_case(case, threads, seconds):
    items, fn = torch_runner(case, threads)
    return measure(case, threads, items, seconds, fn)


def combine(results):
    """Median over rounds of each round's median (and mean CPU time)."""
    out = dict(results[0])
    out["ms"] = statistics.median(r["ms"] for r in results)
    out["cpu_ms"] = statistics.fmean(r["cpu_ms"] for r in results)
    out["items_per_s"] = results[0]["items_per_s"] * results[0]["ms"] / out["ms"]
    out["reps"] = sum(r["reps"] for r in results)
    return out


def ours_case(binary, case, threads, seconds):
    out = subprocess.run([binary, f"--threads={threads}", f"--seconds={seconds}",
                          f"--cases={case}"], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", help="path to the nn_bench binary")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds per case (seconds split over them)")
    ap.add_argument("--out", help="markdown file to write")
    args = ap.parse_args()
    threads_list = [int(t) for t in args.threads.split(",")]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())

    rows = []
    for t in threads_list:
        for case in CASES:
            if not args.ours:
                print(json.dumps(torch_case(case, t, args.seconds)))
                continue
            # Alternate short rounds of ours and PyTorch so both sample the
            # same (shared, noisy) machine load.
            items, fn = torch_runner(case, t)
            per_round = args.seconds / args.rounds
            mine, theirs = [], []
            for _ in range(args.rounds):
                mine.append(ours_case(args.ours, case, t, per_round))
                torch.set_num_threads(t)
                theirs.append(measure(case, t, items, per_round, fn))
            mine, theirs = combine(mine), combine(theirs)
            rows.append((case, t, mine, theirs))
            print(f"{case} threads={t}: ours {mine['ms']:.3f} ms, "
                  f"torch {theirs['ms']:.3f} ms", file=sys.stderr)
    if not args.ours:
        return

    goal = {"encode_b1": "latency <= 1/3 of PyTorch",
            "encode_b256": ">= 1.5x PyTorch throughput",
            "train_sgd_b128": ">= 1.5x PyTorch throughput",
            "train_adam_b128": ">= 1.5x PyTorch throughput"}
    lines = [
        "| case | threads | embedsearch ms | PyTorch ms | embedsearch items/s | "
        "PyTorch items/s | speed-up | goal | embedsearch CPU ms | PyTorch CPU ms |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for case, t, m, p in rows:
        speedup = p["ms"] / m["ms"]
        need = 3.0 if case == "encode_b1" else 1.5
        verdict = "met" if speedup >= need else "not met"
        lines.append(f"| {case} | {t} | {m['ms']:.3f} | {p['ms']:.3f} | "
                     f"{m['items_per_s']:.0f} | {p['items_per_s']:.0f} | "
                     f"{speedup:.2f}x | {goal[case]}: {verdict} | "
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
            f.write("# core/nn: reference encoder vs PyTorch\n\n")
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
