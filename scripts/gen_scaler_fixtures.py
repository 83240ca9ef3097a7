#!/usr/bin/python3
"""Writes tests/fixtures/scaler/reference.json: numpy's statistics for the
online scaler's unit tests (tests/unit/test_scaler.c).

The data: rows of float32 features on very different scales (a constant
feature, one near 1e6 that varies by a few units, amounts in the thousands,
0/1 flags, values around 1e-3), positive sample weights, a labelled mask,
and the batch sizes to feed them in. numpy computes, over the labelled rows
only, the weighted mean and population variance (np.average with weights)
and max |x|, in float64 - what the scaler's Welford/Chan updates must
reproduce. The same rows as CSR (zeros left out, one value split into two
entries of a repeated column) must give the same statistics. A target y
with its weighted mean and variance checks the target statistics.

Run with /usr/bin/python3 (needs numpy). Deterministic.
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "scaler", "reference.json")


def main():
    rng = np.random.RandomState(7)
    n, dim = 53, 6
    x = np.zeros((n, dim), dtype=np.float32)
    x[:, 0] = 3.5                                            # constant
    x[:, 1] = (1e6 + rng.randint(-4, 5, n)).astype(np.float32)  # huge mean, small spread
    x[:, 2] = rng.lognormal(7, 1, n).astype(np.float32)      # amounts in the thousands
    x[:, 3] = (rng.rand(n) < 0.3).astype(np.float32)         # 0/1 flag, mostly 0
    x[:, 4] = (rng.randn(n) * 1e-3).astype(np.float32)       # tiny
    x[:, 5] = np.where(rng.rand(n) < 0.5, 0, rng.randn(n) * 5).astype(np.float32)  # sparse-ish
    w = rng.choice([0.5, 1.0, 2.0, 3.0], n).astype(np.float32)
    labelled = (rng.rand(n) < 0.85).astype(np.uint8)
    y = (x[:, 2] * 0.01 + rng.randn(n) * 3 + 40).astype(np.float32)
    batches = [1, 4, 16, 7, 20, 5]
    assert sum(batches) == n
    lab = labelled.astype(bool)
    xl, wl = x[lab].astype(np.float64), w[lab].astype(np.float64)
    mean = np.average(xl, weights=wl, axis=0)
    var = np.average((xl - mean) ** 2, weights=wl, axis=0)
    maxabs = np.abs(xl).max(axis=0)
    yl = y[lab].astype(np.float64)
    ymean = np.average(yl, weights=wl)
    yvar = np.average((yl - ymean) ** 2, weights=wl)
    # CSR: zeros left out; column 2's value split in two entries in every third row.
    row_ptr, col, val = [0], [], []
    for i in range(n):
        for j in range(dim):
            if x[i, j] == 0:
                continue
            if j == 2 and i % 3 == 0:
                half = np.float32(x[i, j] / 2)
                col += [j, j]
                val += [float(half), float(np.float32(x[i, j] - half))]
            else:
                col.append(j)
                val.append(float(x[i, j]))
        row_ptr.append(len(col))
    ref = {
        "n": n, "dim": dim, "batches": batches,
        "x": [float(v) for v in x.ravel()], "w": [float(v) for v in w],
        "labelled": [int(v) for v in labelled], "y": [float(v) for v in y],
        "csr": {"row_ptr": row_ptr, "col": col, "val": val},
        "weight": float(wl.sum()), "count": int(lab.sum()),
        "mean": [float(v) for v in mean], "var": [float(v) for v in var],
        "maxabs": [float(v) for v in maxabs],
        "y_mean": float(ymean), "y_var": float(yvar),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(ref, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
