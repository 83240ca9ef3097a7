#!/usr/bin/python3
"""The scikit-learn peer of the quality benchmark: SGDClassifier / SGDRegressor
with their defaults, test-then-train with partial_fit over the same batches
streamlearn replays (consecutive samples, --batch-size each).

  quality_sklearn.py DATA_DIR OUT_DIR [--batch-size 16]

For every stream in DATA_DIR/sets.json it reads the companion .npz (the
dense float32 X and y in stream order, as scripts/gen_quality_data.py --npz
writes them) and writes OUT_DIR/<stream>.sklearn.npy: one prediction per
sample (the class, or the value), each made before its batch was trained on.
Samples before the first partial_fit get class 0 / value 0 (nothing to
predict with yet). Needs python3-sklearn and python3-numpy.
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor


def run(X, y, head, classes, batch):
    if head == "linear":
        model = SGDRegressor()
    else:
        model = SGDClassifier()
        labels = np.arange(classes if head == "softmax" else 2)
    pred = np.zeros(len(y), dtype=np.float64)
    fitted = False
    for b0 in range(0, len(y), batch):
        xb, yb = X[b0:b0 + batch], y[b0:b0 + batch]
        if fitted:
            pred[b0:b0 + batch] = model.predict(xb)
        if head == "linear":
            model.partial_fit(xb, yb)
        else:
            model.partial_fit(xb, yb.astype(np.int64), classes=labels)
        fitted = True
    return pred


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--batch-size", type=int, default=16)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.data_dir, "sets.json")))
    os.makedirs(a.out_dir, exist_ok=True)
    # Raw features overflow SGDRegressor's default steps: that is the result.
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", ConvergenceWarning)
    for stream, m in sorted(meta.items()):
        z = np.load(os.path.join(a.data_dir, stream + ".npz"))
        pred = run(z["X"].astype(np.float64), z["y"], m["head"], m["classes"], a.batch_size)
        np.save(os.path.join(a.out_dir, stream + ".sklearn.npy"), pred)
    return 0


if __name__ == "__main__":
    sys.exit(main())
