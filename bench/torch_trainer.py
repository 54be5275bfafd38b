#!/usr/bin/python3
"""The default training recipe of embedsearch-trainer re-done in PyTorch
(Debian's python3-torch), to time training side by side.

Same network (conv 1->32 3x3 + batch norm + ReLU + 2x2 max-pool, conv 32->64
likewise, linear 3136->128, ReLU, linear 128->64, L2 normalize), same PK
batches of 10 classes x 16 images from the real Fashion-MNIST training set,
same augmentation (random left-right flip, shift up to 2 px), same loss
(batch-all triplet margin 0.2 on pairwise_distance, mean over active
triplets), Adam lr 2e-3. Prints one JSON line: images/s over --steps steps
after --warmup steps, data preparation included (as in our trainer).

  /usr/bin/python3 bench/torch_trainer.py --threads 2 --steps 60
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(32)
        self.conv1 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn0(self.conv0(x))), 2)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return F.normalize(self.fc2(x), dim=1)


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def batch_all_triplet(emb, labels, margin):
    # d[a, j] = ||e_a - e_j|| (pairwise_distance without its eps: same cost).
    d = torch.cdist(emb, emb)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    pos = same & ~eye
    neg = ~same
    loss = margin + d[:, :, None] - d[:, None, :]  # [a, p, n]
    valid = pos[:, :, None] & neg[:, None, :]
    loss = F.relu(loss) * valid
    active = (loss > 0).sum().clamp_min(1)
    return loss.sum() / active


def augment(x, rng):
    flip = rng.random(x.shape[0]) < 0.5
    x[flip] = x[flip, :, :, ::-1]
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        dy, dx = rng.integers(-2, 3, size=2)
        src = x[i, 0, max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)]
        out[i, 0, max(0, dy):max(0, dy) + src.shape[0],
            max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--classes_per_batch", type=int, default=10)
    ap.add_argument("--images_per_class", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    images = load_idx(f"{args.data}/train-images-idx3-ubyte.gz")
    labels = load_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    by_class = [np.flatnonzero(labels == c) for c in range(10)]
    mean, std = images.mean() / 255.0, images.std() / 255.0
    model = Encoder().train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    per_batch = args.classes_per_batch * args.images_per_class

    def step():
        classes = rng.choice(10, args.classes_per_batch, replace=False)
        idx = np.concatenate([rng.choice(by_class[c], args.images_per_class, replace=False)
                              for c in classes])
        x = images[idx][:, None, :, :].astype(np.float32) / 255.0
        x = (augment(x, rng) - mean) / std
        y = torch.from_numpy(labels[idx])
        opt.zero_grad()
        loss = batch_all_triplet(model(torch.from_numpy(np.ascontiguousarray(x))), y, 0.2)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"threads": args.threads, "steps": args.steps,
                      "images_per_second": args.steps * per_batch / seconds,
                      "last_loss": loss, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
