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

With --split DIR it is the peer of the emoji recipe (docs/training.md, "The
emoji recipe") instead: DIR is what build/bench/split_export wrote, i.e. the
trainer's own split of an image folder (seen classes' training images, the
held-out classes' images), fitted to the input size, and the per-channel
mean/std the trainer measured. It trains colour-small (ColourSmall below)
with the recipe's PK sampler, augmentation, batch-all triplet loss, Adam and
warm-up + cosine schedule for --epochs epochs (the same steps per epoch as
our sampler makes), evaluates leave-one-out retrieval among the held-out
images every --eval_every epochs (the trainer's definitions: squared L2,
ties in gallery order) and prints one JSON line.

  /usr/bin/python3 bench/torch_trainer.py --split out/emoji-split --epochs 50

--pixel_floor DIR prints the same metrics on DIR's held-out raw pixels / 255
(the check that this metric code reproduces the trainer's numbers).
"""
import argparse
import gzip
import json
import math
import os
import sys
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


def fashion_mnist_speed(args):
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


# ---------------------------------------------------------------------------
# The emoji recipe on the trainer's own split (--split).


class ConvBnRelu(nn.Sequential):
    """c<W> of core/nn/arch_spec.h: conv without bias, batch norm, ReLU."""

    def __init__(self, cin, cout, kernel=3, stride=1, relu=True):
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                  nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class Residual(nn.Module):
    """r<W> (core/nn/layers.cc ResidualBlock):
    relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1
    conv + batch norm when the width or stride changes."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.a = ConvBnRelu(cin, cout, 3, stride)
        self.b = ConvBnRelu(cout, cout, 3, 1, relu=False)
        self.proj = (ConvBnRelu(cin, cout, 1, stride, relu=False)
                     if cin != cout or stride != 1 else None)

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        return F.relu(self.b(self.a(x)) + shortcut)


class ColourSmall(nn.Module):
    """--arch colour-small = c32,p,c64,p,r128,p,gap,fc<dim>, then the L2
    normalization every arch ends with. Initialized as core/nn does: He
    normal (fan in) for every conv, Xavier uniform for the last weight layer
    (the fc), zero biases, batch norm gamma 1 and beta 0."""

    def __init__(self, channels=3, dim=64):
        super().__init__()
        self.features = nn.Sequential(
            ConvBnRelu(channels, 32), nn.MaxPool2d(2),
            ConvBnRelu(32, 64), nn.MaxPool2d(2),
            Residual(64, 128), nn.MaxPool2d(2))
        self.fc = nn.Linear(128, dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        return F.normalize(self.fc(x), dim=1)


def load_split(directory):
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    shape = (meta["height"], meta["width"], meta["channels"])

    def part(name):
        x = np.fromfile(os.path.join(directory, name + ".u8"), np.uint8)
        y = np.fromfile(os.path.join(directory, name + ".labels"), "<i4").astype(np.int64)
        return x.reshape((len(y),) + shape), y

    return meta, part("train"), part("held_out")


class PkSampler:
    """core/data/pk_sampler.h's epochs: each class's images shuffled and cut
    into groups of K (a class with 2 <= n < K images makes one group, padded
    with K - n random repeats); the groups shuffled; each batch takes the
    next P groups of distinct classes; leftovers skipped. The same rules and
    batch count, not the same random draws (numpy's generator)."""

    def __init__(self, labels, p, k, rng):
        self.p, self.k, self.rng, self.labels = p, k, rng, labels
        self.by_class = [idx for idx in (np.flatnonzero(labels == c)
                                         for c in np.unique(labels)) if len(idx) >= 2]

    def epoch(self):
        groups = []
        for idx in self.by_class:
            idx = self.rng.permutation(idx)
            if len(idx) < self.k:
                pad = self.rng.choice(idx, self.k - len(idx), replace=True)
                groups.append(np.concatenate([idx, pad]))
            else:
                groups.extend(idx[i:i + self.k] for i in range(0, len(idx) - self.k + 1, self.k))
        pending = [groups[i] for i in self.rng.permutation(len(groups))]
        batches = []
        while True:
            batch, classes, rest = [], set(), []
            for g in pending:
                c = self.labels[g[0]]
                if len(batch) < self.p and c not in classes:
                    batch.append(g)
                    classes.add(c)
                else:
                    rest.append(g)
            if len(batch) < self.p:
                return batches
            batches.append(np.concatenate(batch))
            pending = rest


def augment_colour(x, rng, crop_min_area, jitter, max_shift=2):
    """The recipe's augmentation (core/data/augment.cc) on N x H x W x 3
    bytes, in its order: random resized crop (area fraction uniform in
    [crop_min_area, 1], aspect log-uniform in [3/4, 4/3], bilinear back to
    H x W), shift by up to max_shift px with black (0) fill, then jitter
    (brightness, contrast around the mean luma, saturation; factors uniform
    in [1 - s, 1 + s]). No flip (the recipe turns it off)."""
    from PIL import Image
    n, h, w, _ = x.shape
    out = np.zeros_like(x)
    for i in range(n):
        img = x[i]
        if crop_min_area < 1:
            area = (crop_min_area + (1 - crop_min_area) * rng.random()) * h * w
            ratio = math.exp(math.log(0.75) + (math.log(4 / 3) - math.log(0.75)) * rng.random())
            cw = min(max(int(round(math.sqrt(area * ratio))), 1), w)
            ch = min(max(int(round(math.sqrt(area / ratio))), 1), h)
            cx = min(w - cw, int(rng.random() * (w - cw + 1)))
            cy = min(h - ch, int(rng.random() * (h - ch + 1)))
            if cw < w or ch < h:
                img = np.asarray(Image.fromarray(img).resize(
                    (w, h), Image.BILINEAR, box=(cx, cy, cx + cw, cy + ch)))
        dy, dx = rng.integers(-max_shift, max_shift + 1, size=2)
        src = img[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        out[i, max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    if jitter > 0:
        f = 1 + jitter * (2 * rng.random((n, 3)) - 1)
        v = out.astype(np.float32) * f[:, 0, None, None, None]
        luma = v @ np.array([0.299, 0.587, 0.114], np.float32)
        mean = luma.mean(axis=(1, 2))[:, None, None, None]
        v = mean + (v - mean) * f[:, 1, None, None, None]
        luma = (v @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        v = luma + (v - luma) * f[:, 2, None, None, None]
        out = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return out


def normalize(x, mean, std):
    """N x H x W x C bytes -> N x C x H x W floats, (p / 255 - mean) / std."""
    x = x.astype(np.float32) / np.float32(255)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def lr_at(step, total, lr, warmup):
    """trainer.cc LearningRateAt, cosine schedule with linear warm-up."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    t = min(max((step - warmup) / max(1, total - warmup), 0.0), 1.0)
    return lr * 0.5 * (1 + math.cos(math.pi * t))


def pairwise_distance(emb, eps=1e-6):
    """d[i, j] = ||e_i - e_j + eps||, PyTorch's pairwise_distance for all
    pairs (what core/loss uses)."""
    return (emb[:, None, :] - emb[None, :, :] + eps).norm(dim=2)


def batch_all_triplet_eps(emb, labels, margin):
    d = pairwise_distance(emb)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & (~same)[:, None, :]
    loss = F.relu(margin + d[:, :, None] - d[:, None, :]) * valid
    active = (loss > 0).sum().clamp_min(1)
    return loss.sum() / active


def leave_one_out(emb, labels):
    """trainer/retrieval_metrics.h's leave-one-out retrieval: each item
    queries all others by squared L2 (ties in gallery order); P@1, R@5,
    R@10, MAP@R with R = the other items of the query's label."""
    emb = np.asarray(emb, np.float32)
    sq = (emb * emb).sum(axis=1)
    d = sq[:, None] + sq[None, :] - 2 * emb @ emb.T
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :-1]
    rel = labels[order] == labels[:, None]
    r = rel.sum(axis=1)
    kmax = max(10, int(r.max()))
    rel = rel[:, :kmax]
    ranks = np.arange(1, kmax + 1)
    precision_at_i = np.cumsum(rel, axis=1) / ranks
    in_r = ranks[None, :] <= r[:, None]
    ap = np.where(r > 0, (precision_at_i * rel * in_r).sum(axis=1) / np.maximum(r, 1), 0)
    return {"queries": len(labels), "precision_at_1": float(rel[:, 0].mean()),
            "recall_at_5": float(rel[:, :5].any(axis=1).mean()),
            "recall_at_10": float(rel[:, :10].any(axis=1).mean()),
            "map_at_r": float(ap.mean())}


def encode(model, x, mean, std, chunk=512):
    model.eval()
    with torch.no_grad():
        out = [model(normalize(x[i:i + chunk], mean, std)).numpy()
               for i in range(0, len(x), chunk)]
    model.train()
    return np.concatenate(out)


def train_split(args):
    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    meta, (x_train, y_train), (x_held, y_held) = load_split(args.split)
    mean, std = meta["mean"], meta["std"]
    sampler = PkSampler(y_train, args.classes_per_batch, args.images_per_class, rng)
    steps_per_epoch = len(sampler.epoch())  # the trainer plans with epoch 0's count
    total = steps_per_epoch * args.epochs
    model = ColourSmall(meta["channels"], args.dim).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    y_train_t = torch.from_numpy(y_train)
    evals, train_seconds, step, loss = [], 0.0, 0, float("nan")
    for epoch in range(1, args.epochs + 1):
        for idx in sampler.epoch():
            if step >= total:
                break
            t0 = time.perf_counter()
            x = augment_colour(x_train[idx], rng, args.crop_min_area, args.jitter)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, args.lr, args.warmup_steps)
            opt.zero_grad()
            out = batch_all_triplet_eps(model(normalize(x, mean, std)), y_train_t[idx], args.margin)
            out.backward()
            opt.step()
            loss = float(out)
            step += 1
            train_seconds += time.perf_counter() - t0
        last = epoch == args.epochs
        if last or (args.eval_every > 0 and epoch % args.eval_every == 0):
            m = leave_one_out(encode(model, x_held, mean, std), y_held)
            m.update(epoch=epoch, step=step, train_seconds=round(train_seconds, 2))
            evals.append(m)
            print(json.dumps(m), file=sys.stderr, flush=True)
    result = {"peer": "pytorch", "torch": torch.__version__, "threads": args.threads,
              "epochs": args.epochs, "steps": step, "steps_per_epoch": steps_per_epoch,
              "last_loss": loss, "train_seconds": round(train_seconds, 2),
              "wall_seconds": round(time.perf_counter() - t_start, 2),
              "held_out": evals[-1], "evaluations": evals}
    print(json.dumps(result))


def pixel_floor(args):
    meta, _, (x_held, y_held) = load_split(args.pixel_floor)
    m = leave_one_out(x_held.reshape(len(x_held), -1).astype(np.float32) / np.float32(255), y_held)
    m["pixels"] = "RGB %dx%d" % (meta["width"], meta["height"])
    print(json.dumps(m))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--classes_per_batch", type=int, default=None,
                    help="P (default 10 on Fashion-MNIST, 32 with --split)")
    ap.add_argument("--images_per_class", type=int, default=None,
                    help="K (default 16 on Fashion-MNIST, 4 with --split)")
    ap.add_argument("--split", help="split_export's directory: train the emoji recipe")
    ap.add_argument("--pixel_floor", help="split_export's directory: raw-pixel metrics")
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--eval_every", type=int, default=10)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup_steps", type=int, default=100)
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--crop_min_area", type=float, default=0.7)
    ap.add_argument("--jitter", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.pixel_floor:
        return pixel_floor(args)
    emoji = args.split is not None
    if args.classes_per_batch is None:
        args.classes_per_batch = 32 if emoji else 10
    if args.images_per_class is None:
        args.images_per_class = 4 if emoji else 16
    return train_split(args) if emoji else fashion_mnist_speed(args)


if __name__ == "__main__":
    main()
