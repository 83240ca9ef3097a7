#!/usr/bin/python3
"""Scores the quality benchmark's predictions and prints its tables.

  quality_report.py DATA_DIR PRED_DIR RAW_JSON --grid 0.001,0.003,... [--shapes ,32]

Each stream is several shuffled passes over one data set; the score is the
prequential score of the last pass (every prediction made before its batch
trained): accuracy for classification, R^2 = 1 - SSE / SST for regression.
Scores are averaged over the seeds (shuffles) of a (data set, form); the
tuned Adam is the grid learning rate with the best mean, chosen separately
with scaling on (the default --scale auto) and off (the PyTorch loop), and
the better of the two is the bar. Prediction files in PRED_DIR:
  <stream>.<shape>.<run>.msgpack   streamlearn replay output; shape "h0" (no
                                   hidden layer) or "h32" etc., run "default",
                                   "adam-<lr>" or "adamoff-<lr>"
  <stream>.sklearn.npy             bench/peers/quality_sklearn.py (shape h0)
Writes every number to RAW_JSON, which bench/quality.sh hands to bench/record.py
(bench/results/quality.json, the source of the docs' tables), and prints the
tables.
"""
import argparse
import json
import math
import os
import sys

import msgpack
import numpy as np


def load_streamlearn(path):
    preds = []
    with open(path, "rb") as f:
        for p in msgpack.Unpacker(f, raw=False):
            preds.append(p.get("pred") if isinstance(p, dict) else None)
    return preds


def score(meta, y, preds):
    """Last-pass score; None when the run produced nothing usable."""
    n = meta["records"]
    y = y[-n:]
    p = preds[-n:]
    if len(p) != n:
        return None
    if meta["head"] == "linear":
        v = np.array([math.nan if q is None else float(q) for q in p])
        if not np.all(np.isfinite(v)):
            return -math.inf
        return float(1 - ((y - v) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    if meta["head"] == "logistic":
        c = np.array([-1 if q is None else int(float(q) >= 0.5) for q in p])
    else:
        c = np.array([-1 if q is None else int(q) for q in p])
    return float((c == y.astype(np.int64)).mean())


def mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def fmt(v):
    if v is None:
        return "  -   "
    if v == -math.inf:
        return " -inf "
    if v < -99:
        return "%7.0e" % v  # diverged: the magnitude is what matters
    return "%6.3f" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("pred_dir")
    ap.add_argument("out_json")
    ap.add_argument("--grid", required=True)
    ap.add_argument("--shapes", default="h0")
    a = ap.parse_args()
    grid = [g for g in a.grid.split(",") if g]
    shapes = [s for s in a.shapes.split(",") if s]
    meta = json.load(open(os.path.join(a.data_dir, "sets.json")))
    groups = {}
    for stream, m in meta.items():
        groups.setdefault((m["set"], m["form"]), []).append(stream)

    def runs_of(shape, stream, y, m):
        out = {}
        labels = ["default"] + ["adam-" + g for g in grid] + ["adamoff-" + g for g in grid]
        for label in labels:
            path = os.path.join(a.pred_dir, "%s.%s.%s.msgpack" % (stream, shape, label))
            if os.path.exists(path):
                out[label] = score(m, y, load_streamlearn(path))
        if shape == "h0":
            path = os.path.join(a.pred_dir, stream + ".sklearn.npy")
            if os.path.exists(path):
                out["sklearn"] = score(m, y, list(np.load(path)))
        return out

    rows = []
    for shape in shapes:
        for (name, form), streams in sorted(groups.items()):
            per_seed = {}
            m0 = meta[streams[0]]
            for stream in sorted(streams):
                y = np.load(os.path.join(a.data_dir, stream + ".npz"))["y"]
                for label, v in runs_of(shape, stream, y, meta[stream]).items():
                    per_seed.setdefault(label, []).append(v)
            means = {label: mean(v) for label, v in per_seed.items()}

            def best(prefix):
                cands = [(means.get(prefix + g), g) for g in grid]
                cands = [(v, g) for v, g in cands if v is not None]
                if not cands:
                    return None, None
                v, g = max(cands)
                return v, float(g)

            adam_on, lr_on = best("adam-")
            adam_off, lr_off = best("adamoff-")
            bars = [v for v in (adam_on, adam_off) if v is not None]
            adam_best = max(bars) if bars else None
            d = means.get("default")
            row = {
                "set": name, "form": form, "shape": shape, "head": m0["head"],
                "metric": "r2" if m0["head"] == "linear" else "accuracy",
                "records": m0["records"], "passes": m0["passes"], "seeds": len(streams),
                "default": d, "sklearn": means.get("sklearn"),
                "adam_scaled": adam_on, "adam_scaled_lr": lr_on,
                "adam_unscaled": adam_off, "adam_unscaled_lr": lr_off,
                "adam_grid_scaled": {g: means.get("adam-" + g) for g in grid},
                "adam_grid_unscaled": {g: means.get("adamoff-" + g) for g in grid},
                "per_seed": {k: v for k, v in per_seed.items()},
            }
            row["vs_adam"] = d - adam_best if d is not None and adam_best is not None else None
            row["meets_adam"] = row["vs_adam"] is not None and row["vs_adam"] >= -0.01
            sk = means.get("sklearn")
            row["meets_sklearn"] = None if shape != "h0" else (
                d is not None and (sk is None or sk == -math.inf or d >= sk))
            rows.append(row)

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    result = {
        "protocol": "each stream: a data set bundled with scikit-learn, shuffled, %d passes; "
                    "batches of 16 consecutive samples; score = prequential score of the last "
                    "pass (accuracy, or R^2 for regression), mean over %d shuffles; "
                    "streamlearn runs: shape flags only (plus the Adam flags for the grid)"
                    % (m0["passes"], len(streams)),
        "adam_grid": [float(g) for g in grid],
        "rows": clean(rows),
    }
    with open(a.out_json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")

    for shape in shapes:
        hid = "no hidden layer" if shape == "h0" else "--hidden " + shape[1:]
        print("\n%s (%s): last-pass prequential score, mean of %d shuffles" %
              ("shape flags only" if shape == "h0" else "with " + hid, hid, len(streams)))
        print("%-14s %-7s %-4s | %7s | %7s | %7s %-6s | %7s %-6s | %7s %s" % (
            "data set", "form", "", "default", "sklearn", "Adam*", "(lr)", "Adam*", "(lr)",
            "vs Adam", "targets"))
        print("%-14s %-7s %-4s | %7s | %7s | %14s | %14s |" % (
            "", "", "", "", "SGD", "scale auto", "scale off"))
        for r in rows:
            if r["shape"] != shape:
                continue
            ok = r["meets_adam"] and r["meets_sklearn"] is not False
            print("%-14s %-7s %-4s | %7s | %7s | %7s %-6s | %7s %-6s | %7s %s" % (
                r["set"], r["form"], "R^2" if r["metric"] == "r2" else "acc", fmt(r["default"]),
                fmt(r["sklearn"]) if shape == "h0" else "",
                fmt(r["adam_scaled"]), "(%g)" % r["adam_scaled_lr"] if r["adam_scaled_lr"] else "",
                fmt(r["adam_unscaled"]),
                "(%g)" % r["adam_unscaled_lr"] if r["adam_unscaled_lr"] else "",
                "%+.3f" % r["vs_adam"] if r["vs_adam"] is not None else "-",
                "ok" if ok else "MISSED"))
    print("\nwrote %s" % a.out_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
