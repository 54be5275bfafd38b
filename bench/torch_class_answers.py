#!/usr/bin/python3
"""Study behind the trainer's --answers=classes: batch-all triplet vs a cosine
softmax over learned class vectors (the EBM classifier with NLL, scale 16 =
2 x beta 8) on bench/torch_trainer.py's network, PK batches 10 x 16, flip +
shift augmentation, Adam 2e-3 with warm-up + cosine over --epochs; prints
kNN precision@1 (10k test vs 60k train) after each epoch. Run 2026-12-01:
  /usr/bin/python3 bench/torch_class_answers.py --loss triplet   # 0.8615 0.8797 0.8858
  /usr/bin/python3 bench/torch_class_answers.py --loss proxy     # 0.8738 0.8836 0.8853
"""
import argparse, json, math, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from torch_trainer import Encoder, load_idx, batch_all_triplet, augment

ap = argparse.ArgumentParser()
ap.add_argument("--loss", default="proxy")
ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--scale", type=float, default=16)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--mix", type=float, default=0.0)
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(1); rng = np.random.default_rng(1)
D = "/usr/share/datasets/fashion-mnist"
X = load_idx(f"{D}/train-images-idx3-ubyte.gz"); Y = load_idx(f"{D}/train-labels-idx1-ubyte.gz").astype(np.int64)
XT = load_idx(f"{D}/t10k-images-idx3-ubyte.gz"); YT = load_idx(f"{D}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
mean, std = X.mean()/255.0, X.std()/255.0
by_class = [np.flatnonzero(Y == c) for c in range(10)]
model = Encoder()
proto = nn.Parameter(torch.randn(10, 64) * 0.1)
params = list(model.parameters()) + ([proto] if a.loss != "triplet" else [])
opt = torch.optim.Adam(params, lr=2e-3)
steps_per_epoch = 60000 // 160; total = steps_per_epoch * a.epochs
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s+1)/100) * 0.5*(1+math.cos(math.pi*min(s, total)/total)))
def enc(imgs):
    model.eval(); out=[]
    with torch.no_grad():
        for i in range(0, len(imgs), 1000):
            x = (imgs[i:i+1000][:, None].astype(np.float32)/255.0 - mean)/std
            out.append(model(torch.from_numpy(x)))
    model.train(); return torch.cat(out)
def evaluate():
    g = enc(X); q = enc(XT)
    nn_idx = torch.cat([torch.cdist(q[i:i+1000], g).argmin(1) for i in range(0, 10000, 1000)])
    return float((torch.from_numpy(Y)[nn_idx] == torch.from_numpy(YT)).float().mean())
t0 = time.time(); step = 0
for ep in range(a.epochs):
    for _ in range(steps_per_epoch):
        idx = np.concatenate([rng.choice(by_class[c], 16, replace=False) for c in range(10)])
        x = (augment(X[idx][:, None].astype(np.float32)/255.0, rng) - mean)/std
        y = torch.from_numpy(Y[idx])
        e = model(torch.from_numpy(np.ascontiguousarray(x)))
        if a.loss == "triplet":
            loss = batch_all_triplet(e, y, 0.2)
        else:
            logits = a.scale * e @ F.normalize(proto, dim=1).t()
            loss = F.cross_entropy(logits, y)
            if a.mix > 0: loss = loss + a.mix * batch_all_triplet(e, y, 0.2)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); step += 1
    print(json.dumps({"loss": a.loss, "scale": a.scale, "mix": a.mix, "epoch": ep+1, "p1": evaluate(), "last_loss": float(loss), "s": round(time.time()-t0)}), flush=True)
