#!/usr/bin/env python3
"""The PyTorch peer of `streamlearn replay`: the same test-then-train loop a
PyTorch user writes over a msgpack file, one prediction per sample.

  replay_torch.py --input F --output F --dim D [--classes K] [--hidden H,..]
                  [--batch-size B] [--lr LR]

Model: nn.Sequential(Linear, ReLU, ..., Linear); logistic (BCEWithLogits) when
--classes is 0, else softmax (CrossEntropy); Adam. One thread, like the worker.
Prints samples/s on stderr.
"""
import argparse
import sys
import time

import msgpack
import numpy as np
import torch
import torch.nn as nn


def build(dim, hidden, out):
    layers, d = [], dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--hidden", default="")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hidden = [int(h) for h in a.hidden.split(",") if h]
    softmax = a.classes >= 2
    model = build(a.dim, hidden, a.classes if softmax else 1)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss() if softmax else nn.BCEWithLogitsLoss()
    packer = msgpack.Packer(use_single_float=True)

    def run(batch, out):
        xs = [s["x"] for s in batch]
        if isinstance(xs[0], bytes):
            x = torch.from_numpy(np.frombuffer(b"".join(xs), dtype=np.float32).reshape(len(xs), a.dim).copy())
        else:
            x = torch.tensor(xs, dtype=torch.float32)
        y = torch.tensor([s["y"] for s in batch])
        logits = model(x)
        with torch.no_grad():
            if softmax:
                proba = torch.softmax(logits, 1)
                preds = [{"id": s["id"], "pred": int(p.argmax()), "proba": p.tolist()}
                         for s, p in zip(batch, proba)]
            else:
                p = torch.sigmoid(logits[:, 0]).tolist()
                preds = [{"id": s["id"], "pred": v} for s, v in zip(batch, p)]
        for p in preds:
            out.write(packer.pack(p))
        loss = loss_fn(logits, y) if softmax else loss_fn(logits[:, 0], y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    n = 0
    with open(a.input, "rb") as f, open(a.output, "wb") as out:
        batch = []
        for obj in msgpack.Unpacker(f, raw=False):
            batch.extend(obj if isinstance(obj, list) else [obj])
            while len(batch) >= a.batch_size:
                run(batch[:a.batch_size], out)
                n += a.batch_size
                batch = batch[a.batch_size:]
        if batch:
            run(batch, out)
            n += len(batch)
    dt = time.perf_counter() - t0
    print(f"replay_torch: {n} samples in {dt:.2f} s, {n / dt:.0f} samples/s", file=sys.stderr)


if __name__ == "__main__":
    main()
