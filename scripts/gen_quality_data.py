#!/usr/bin/python3
"""Writes learning-quality streams from real data sets bundled with scikit-learn.

  gen_quality_data.py OUT_DIR [--seeds 0,1,2] [--passes 3] [--sets a,b,...] [--npz]
  gen_quality_data.py --fixtures      the committed subset, into tests/fixtures/quality

Each stream is what a user's pipeline would send: the whole data set, shuffled,
`--passes` times over (a new shuffle per pass), one msgpack sample map per
record ({"x", "y", "id"}), so `streamlearn replay` and the scikit-learn peer
(bench/peers/quality_sklearn.py) see the same samples in the same order.

Data sets (all ship with scikit-learn; nothing is downloaded):
  breast_cancer  binary (logistic), 569 x 30     Wisconsin diagnostic
  wine           3 classes (softmax), 178 x 13
  diabetes       regression (linear), 442 x 10   the raw, unscaled records
  digits         10 classes (softmax), 1797 x 64  8x8 pixel counts 0..16
  iris           3 classes (softmax), 150 x 4

Forms (file name <set>-<form>-s<seed>.msgpack):
  raw     the records as published, dense float32 (bin form)
  std     standardised beforehand (mean 0, variance 1 over the whole set), as
          an offline pipeline would do; dense float32
  sparse  (digits) map index -> value, zeros left out: the CSR path
  hashed  (breast_cancer) map feature name -> value, hashed into --dim 64
          (MurmurHash3_x86_32 mod 64, collisions add up)

OUT_DIR/sets.json describes every stream: head, dim, classes, records per pass,
passes, and the streamlearn shape flags. With --npz, a companion OUT_DIR/
<stream>.npz holds the dense float32 X and y in stream order (what the model
sees) for peers that do not decode msgpack.

--fixtures writes one shuffled pass per stream, gzipped, as
tests/fixtures/quality/<set>-<form>.msgpack.gz (tests/integration/
test_quality.sh replays it three times over), and sets.json beside them.

Deterministic: the same arguments write the same bytes. Needs python3-sklearn,
python3-numpy and python3-msgpack.
"""

import argparse
import gzip
import json
import os
import struct
import sys

import msgpack
import numpy as np
from sklearn import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
F32 = np.float32
HASHED_DIM = 64


def murmur3_32(data, seed=0):
    """MurmurHash3_x86_32, as the decoder hashes named features."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    for i in range(n // 4):
        (k,) = struct.unpack_from("<I", data, i * 4)
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[(n // 4) * 4:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


assert murmur3_32(b"hello", 0) == 0x248BFA47


def load(name):
    """(X float64, y, head, classes, feature names) of a bundled data set."""
    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
        return d.data, d.target, "logistic", 0, list(d.feature_names)
    if name == "wine":
        d = datasets.load_wine()
        return d.data, d.target, "softmax", 3, list(d.feature_names)
    if name == "diabetes":
        d = datasets.load_diabetes(scaled=False)
        return d.data, d.target, "linear", 0, list(d.feature_names)
    if name == "digits":
        d = datasets.load_digits()
        return d.data, d.target, "softmax", 10, ["p%d" % i for i in range(64)]
    if name == "iris":
        d = datasets.load_iris()
        return d.data, d.target, "softmax", 3, list(d.feature_names)
    raise SystemExit("unknown data set %s" % name)


FORMS = {
    "breast_cancer": ["raw", "std", "hashed"],
    "wine": ["raw", "std"],
    "diabetes": ["raw", "std"],
    "digits": ["raw", "std", "sparse"],
    "iris": ["raw", "std"],
}


def number(v):
    """An integral value as a msgpack int (smaller), else a float32."""
    return int(v) if float(v).is_integer() and abs(v) < 2**31 else float(v)


def shape_flags(head, dim, classes):
    flags = ["--model", head, "--dim", str(dim)]
    if head == "softmax":
        flags += ["--classes", str(classes)]
    return flags


def write_stream(path, X, y, head, form, names, order, npz, gz=False):
    dim = HASHED_DIM if form == "hashed" else X.shape[1]
    dense = np.zeros((len(order), dim), dtype=F32)
    ys = np.zeros(len(order), dtype=F32)
    packer = msgpack.Packer(use_single_float=True)
    # mtime 0: the same data gives the same bytes.
    opener = (lambda p: gzip.GzipFile(p, "wb", compresslevel=9, mtime=0)) if gz else \
        (lambda p: open(p, "wb"))
    with opener(path) as f:
        for i, r in enumerate(order):
            row = X[r].astype(F32)
            if form in ("raw", "std"):
                xw = row.astype("<f4").tobytes()
                dense[i] = row
            elif form == "sparse":
                xw = {int(j): number(row[j]) for j in np.nonzero(row)[0]}
                dense[i] = row
            else:  # hashed: named features, as a producer of named events sends them
                xw = {}
                for j, v in enumerate(row):
                    if v != 0:
                        key = names[j]
                        xw[key] = number(v)
                        dense[i, murmur3_32(key.encode()) % dim] += v
            label = int(y[r]) if head != "linear" else float(y[r])
            ys[i] = label
            f.write(packer.pack({"id": int(i), "x": xw, "y": label}))
    if npz:
        np.savez_compressed(path[: -len(".msgpack")] + ".npz", X=dense, y=ys)
    return dim


def generate(out_dir, sets, seeds, passes, npz, forms_filter=None, fixtures=False):
    os.makedirs(out_dir, exist_ok=True)
    meta = {}
    for name in sets:
        X, y, head, classes, names = load(name)
        X = X.astype(np.float64)
        std = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        n = X.shape[0]
        for form in FORMS[name]:
            if forms_filter and (name, form) not in forms_filter:
                continue
            data = std if form == "std" else X
            for seed in seeds:
                rng = np.random.RandomState(1000 + seed)
                order = np.concatenate([rng.permutation(n) for _ in range(passes)])
                stream = "%s-%s" % (name, form) if fixtures else "%s-%s-s%d" % (name, form, seed)
                ext = ".msgpack.gz" if fixtures else ".msgpack"
                dim = write_stream(os.path.join(out_dir, stream + ext), data, y, head, form, names,
                                   order, npz, fixtures)
                meta[stream] = {
                    "set": name, "form": form, "seed": seed, "head": head, "dim": dim,
                    "classes": classes, "records": n, "passes": passes,
                    "flags": shape_flags(head, dim, classes),
                }
    with open(os.path.join(out_dir, "sets.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    return meta


# The committed subset: binary, multiclass and regression, raw and standardised,
# plus the sparse and hashed paths; one seed. Small enough to run in seconds.
FIXTURES = [("breast_cancer", "raw"), ("breast_cancer", "std"), ("breast_cancer", "hashed"),
            ("wine", "raw"), ("wine", "std"), ("diabetes", "raw"), ("diabetes", "std"),
            ("digits", "sparse")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--sets", default=",".join(FORMS))
    ap.add_argument("--npz", action="store_true")
    ap.add_argument("--fixtures", action="store_true")
    a = ap.parse_args()
    if a.fixtures:
        out = os.path.join(ROOT, "tests", "fixtures", "quality")
        sets = sorted({s for s, _ in FIXTURES})
        generate(out, sets, [0], 1, False, set(FIXTURES), fixtures=True)
        return
    if not a.out_dir:
        ap.error("OUT_DIR or --fixtures")
    seeds = [int(s) for s in a.seeds.split(",") if s]
    generate(a.out_dir, [s for s in a.sets.split(",") if s], seeds, a.passes, a.npz)


if __name__ == "__main__":
    sys.exit(main())
