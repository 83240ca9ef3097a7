#!/usr/bin/env python3
"""Writes a synthetic labelled stream for the replay benchmark.

  make_stream.py OUT N [--dim 32] [--form array|bin] [--classes K] [--seed S]

Each sample is {"id": i, "x": [dim floats] or bin, "y": label}; floats are
msgpack float32 (use_single_float), so a dim-32 array sample is ~177 bytes.
Labels come from a fixed random hyperplane (logistic) or argmax of K random
directions (softmax), with 10% label noise, so the stream is learnable.
Streams to OUT in chunks: memory stays flat whatever N is.
"""
import argparse
import struct

import msgpack
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--form", choices=["array", "bin"], default="array")
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    k = a.classes if a.classes >= 2 else 1
    w = rng.normal(size=(a.dim, k)).astype(np.float32)
    packer = msgpack.Packer(use_single_float=True)
    chunk = 65536
    with open(a.out, "wb") as f:
        for base in range(0, a.n, chunk):
            m = min(chunk, a.n - base)
            x = rng.normal(size=(m, a.dim)).astype(np.float32)
            s = x @ w
            y = (s.argmax(1) if k > 1 else (s[:, 0] > 0).astype(np.int64))
            flip = rng.random(m) < 0.1
            y = np.where(flip, rng.integers(0, max(k, 2), m), y)
            out = bytearray()
            for i in range(m):
                xv = x[i].tobytes() if a.form == "bin" else x[i].tolist()
                out += packer.pack({"id": base + i, "x": xv, "y": int(y[i])})
            f.write(out)


if __name__ == "__main__":
    main()
