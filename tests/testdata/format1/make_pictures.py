#!/usr/bin/python3
"""Small pictures of three kinds written by Pillow (a third-party encoder):
RGB, gray and RGBA, PNG and JPEG, of varied sizes and aspect ratios, in
ROOT/<label>/ folders. Deterministic. Usage: make_pictures.py ROOT"""
import os
import sys

import numpy as np
from PIL import Image

root = sys.argv[1]
rng = np.random.default_rng(16)
# (label, colour) with shapes differing per index.
classes = {"red": (220, 40, 30), "blue": (30, 60, 220), "green": (40, 180, 60)}
sizes = [(40, 30), (17, 61), (64, 64), (100, 23)]
for label, colour in classes.items():
    os.makedirs(os.path.join(root, label), exist_ok=True)
    for i, (w, h) in enumerate(sizes):
        y, x = np.mgrid[0:h, 0:w]
        shade = ((x * 3 + y * 5 + i * 40) % 64).astype(np.int32)
        rgb = np.stack([np.clip(c + shade - 32, 0, 255) for c in colour], -1)
        rgb = rgb.astype(np.uint8)
        path = os.path.join(root, label, f"{i}")
        if i == 0:
            Image.fromarray(rgb, "RGB").save(path + ".png")
        elif i == 1:
            Image.fromarray(rgb, "RGB").save(path + ".jpg", quality=92)
        elif i == 2:
            alpha = ((x * 4) % 256).astype(np.uint8)
            Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path + ".png")
        else:
            Image.fromarray(rgb, "RGB").convert("L").save(path + ".png")
