#!/usr/bin/python3
"""The operations of bench/image_bench.cc in Pillow + NumPy, on the inputs it
wrote (--write_inputs). Prints "name<TAB>microseconds" (CPU time, best of 3).
Usage: image_reference.py INPUT_DIR FASHION_MNIST_DIR
"""
import gzip
import io
import sys
import time

import numpy as np
from PIL import Image

MEAN, STD = np.float32(0.2860), np.float32(0.3530)


def cpu_micros(reps, f):
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        for _ in range(reps):
            f()
        best = min(best, (time.process_time() - t0) * 1e6 / reps)
    return best


def decode(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def preprocess(im):
    gray = im.convert("L").resize((28, 28), Image.BOX)
    return (np.asarray(gray, np.float32) / np.float32(255) - MEAN) / STD


def encode_png(im):
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def load_train(d):
    with gzip.open(d + "/train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(d + "/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    assert len(images) == len(labels) == 60000


def main():
    inputs, fmnist = sys.argv[1], sys.argv[2]
    png28 = open(inputs + "/fmnist28.png", "rb").read()
    jpeg512 = open(inputs + "/photo512.jpg", "rb").read()
    png512 = open(inputs + "/photo512.png", "rb").read()
    photo = decode(png512)
    small = decode(png28)
    rows = [
        ("decode_png_28x28_gray", cpu_micros(20000, lambda: decode(png28))),
        ("decode_jpeg_512x512_rgb", cpu_micros(100, lambda: decode(jpeg512))),
        ("decode_png_512x512_rgb", cpu_micros(50, lambda: decode(png512))),
        ("preprocess_512x512_rgb_to_28x28", cpu_micros(100, lambda: preprocess(photo))),
        ("query_jpeg_512x512_decode_and_preprocess",
         cpu_micros(100, lambda: preprocess(decode(jpeg512)))),
        ("encode_png_512x512_rgb", cpu_micros(20, lambda: encode_png(photo))),
        ("encode_png_28x28_gray", cpu_micros(20000, lambda: encode_png(small))),
        ("load_fashion_mnist_train", cpu_micros(1, lambda: load_train(fmnist))),
    ]
    for name, us in rows:
        print("%s\t%.2f" % (name, us))


if __name__ == "__main__":
    main()
