#!/usr/bin/python3
"""The measurement behind the default optimizer: candidate rules for one
pass over a stream, side by side, in a PyTorch re-implementation of
streamlearn's loop (so that rules streamlearn does not ship can be tried).

  optim_candidates.py DATA_DIR [--shapes ,32] [--seeds N]

writes bench/results/optim_candidates.json through bench/record.py.

DATA_DIR is what scripts/gen_quality_data.py --npz writes (bench/quality.sh
leaves it in $BENCH_DATA/quality/data). The loop is streamlearn's: batches of
16 consecutive samples, each predicted before it trains; features scaled
online (running mean and deviation, or max |x| for sparse and hashed forms;
the first labelled batch seeds the statistics, later batches are predicted
with the statistics of the batches before them); a linear head trains in
standardised target units. Only the optimizer changes:
  adam*        Adam at the best learning rate of 0.001..0.3 for each data set
               (tuned with hindsight: the bar, not a candidate)
  adam         Adam, torch's default lr 1e-3
  adagrad      Adagrad, torch's default lr 0.01, and lr 0.5 (VW's default)
  cocob        COCOB-Backprop (Orabona & Tommasi 2017), alpha 100: parameter-free
  prodigy      Prodigy (Mishchenko & Defazio 2023), Adam form, d0 1e-6: parameter-free
  auto         streamlearn's default (docs/LEARNING.md)
Scores are the last pass's prequential accuracy or R^2, mean over seeds.
Initial weights come from torch's generator, so numbers differ slightly from
streamlearn's own (bench/results/quality.json). Needs python3-torch.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


class Scaler:
    """Online standard / maxabs scaling with streamlearn's timing."""

    def __init__(self, dim, mode):
        self.mode, self.w = mode, 0.0
        self.mean, self.m2, self.maxabs = np.zeros(dim), np.zeros(dim), np.zeros(dim)

    def transform(self, x):
        if self.mode == "maxabs":
            mult = np.where(self.maxabs > 0, 1 / np.where(self.maxabs > 0, self.maxabs, 1), 1)
            return (x * mult.astype(np.float32)).astype(np.float32)
        var = self.m2 / self.w if self.w > 0 else np.zeros_like(self.m2)
        mult = np.where(var > 0, 1 / np.sqrt(np.where(var > 0, var, 1)), 1).astype(np.float32)
        return ((x - self.mean.astype(np.float32)) * mult).astype(np.float32)

    def update(self, x):
        xd = x.astype(np.float64)
        self.maxabs = np.maximum(self.maxabs, np.abs(xd).max(0))
        wb = len(xd)
        mb = xd.mean(0)
        m2b = ((xd - mb) ** 2).sum(0)
        d = mb - self.mean
        total = self.w + wb
        self.mean = self.mean + d * wb / total
        self.m2 = self.m2 + m2b + d * d * self.w * wb / total
        self.w = total


class Adam:
    def __init__(self, ps, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        self.ps, self.lr, self.b1, self.b2, self.eps, self.t = ps, lr, b1, b2, eps, 0
        self.m = [torch.zeros_like(p) for p in ps]
        self.v = [torch.zeros_like(p) for p in ps]

    @torch.no_grad()
    def step(self, ctx):
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.ps, self.m, self.v):
            m.mul_(self.b1).add_(p.grad, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1 - self.b2)
            p.addcdiv_(m, v.sqrt() / math.sqrt(bc2) + self.eps, value=-self.lr / bc1)


class Adagrad:
    def __init__(self, ps, lr=0.01, eps=1e-10):
        self.ps, self.lr, self.eps = ps, lr, eps
        self.s = [torch.zeros_like(p) for p in ps]

    @torch.no_grad()
    def step(self, ctx):
        for p, s in zip(self.ps, self.s):
            s.addcmul_(p.grad, p.grad)
            p.addcdiv_(p.grad, s.sqrt() + self.eps, value=-self.lr)


class Cocob:
    """COCOB-Backprop, Orabona & Tommasi 2017, Algorithm 2."""

    def __init__(self, ps, alpha=100.0, eps=1e-8):
        self.ps, self.alpha = ps, alpha
        self.w1 = [p.detach().clone() for p in ps]
        self.L = [torch.full_like(p, eps) for p in ps]
        self.G = [torch.zeros_like(p) for p in ps]
        self.R = [torch.zeros_like(p) for p in ps]
        self.th = [torch.zeros_like(p) for p in ps]

    @torch.no_grad()
    def step(self, ctx):
        for p, w1, L, G, R, th in zip(self.ps, self.w1, self.L, self.G, self.R, self.th):
            g = p.grad
            torch.maximum(L, g.abs(), out=L)
            G.add_(g.abs())
            R.copy_(torch.clamp(R - (p - w1) * g, min=0))
            th.add_(g)
            p.copy_(w1 - th / (L * torch.maximum(G + L, self.alpha * L)) * (L + R))


class Prodigy:
    """Prodigy, Mishchenko & Defazio 2023 (Adam form, lr 1, no bias correction)."""

    def __init__(self, ps, b1=0.9, b2=0.999, eps=1e-8, d0=1e-6):
        self.ps, self.b1, self.b2, self.eps = ps, b1, b2, eps
        self.b3, self.d, self.d0, self.dmax, self.num = math.sqrt(b2), d0, d0, d0, 0.0
        self.x0 = [p.detach().clone() for p in ps]
        self.s = [torch.zeros_like(p) for p in ps]
        self.m = [torch.zeros_like(p) for p in ps]
        self.v = [torch.zeros_like(p) for p in ps]

    @torch.no_grad()
    def step(self, ctx):
        d = self.d
        num, den = self.num * self.b3, 0.0
        for p, x0, s, m, v in zip(self.ps, self.x0, self.s, self.m, self.v):
            g = p.grad
            num += (d / self.d0) * d * float(torch.dot(g.flatten(), (x0 - p).flatten()))
            m.mul_(self.b1).add_(g, alpha=d * (1 - self.b1))
            v.mul_(self.b2).addcmul_(g, g, value=d * d * (1 - self.b2))
            s.mul_(self.b3).add_(g, alpha=(d / self.d0) * d)
            den += float(s.abs().sum())
        self.num = num
        if den > 0:
            self.dmax = max(self.dmax, num / den)
            self.d = max(d, self.dmax)
        for p, m, v in zip(self.ps, self.m, self.v):
            p.addcdiv_(m, v.sqrt() + d * self.eps, value=-d)


class Auto:
    """streamlearn's --optimizer auto (model/optim.c, model/learner.c)."""

    def __init__(self, ps, lr=2.0, momentum=0.5, eps=1e-10, linear=False, layers=1):
        self.ps, self.lr, self.beta, self.eps, self.t = ps, lr, momentum, eps, 0
        self.head = 0.25 if linear else 1.0
        self.layers = layers
        self.sum = [torch.zeros_like(p) for p in ps]
        self.m = [torch.zeros_like(p) for p in ps]
        self.norm = [0.0] * layers
        self.rows = 0

    def observe(self, inputs):
        for i, a in enumerate(inputs):
            self.norm[i] += float((a.double() ** 2).sum())
        self.rows += inputs[0].shape[0]

    @torch.no_grad()
    def step(self, ctx):
        self.t += 1
        L = self.layers
        warm = min(1.0, self.t / (5.0 * (L - 1))) if L > 1 else 1.0
        bc = 1 - self.beta ** self.t
        for k, (p, s, m) in enumerate(zip(self.ps, self.sum, self.m)):
            layer = k // 2
            scale = self.head * warm / (L * L * math.sqrt(self.norm[layer] / self.rows + 1))
            s.addcmul_(p.grad, p.grad)
            m.mul_(self.beta).add_(p.grad, alpha=1 - self.beta)
            p.addcdiv_(m, s.sqrt() + self.eps, value=-self.lr * scale / bc)


def build(dim, hidden, out):
    layers, d = [], dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


def run(x, y, meta, hidden, make_opt, seed, batch=16):
    head, dim, k = meta["head"], meta["dim"], meta["classes"]
    out = k if head == "softmax" else 1
    torch.manual_seed(seed)
    model = build(dim, hidden, out)
    ps = list(model.parameters())
    opt = make_opt(ps, head == "linear", len(hidden) + 1)
    sc = Scaler(dim, "maxabs" if meta["form"] in ("sparse", "hashed") else "standard")
    n = len(y)
    pred = np.zeros((n, out), dtype=np.float32)
    yw, ymean, ym2 = 0.0, 0.0, 0.0
    for b0 in range(0, n, batch):
        xb, yb = x[b0:b0 + batch], y[b0:b0 + batch]
        seeded = sc.w == 0
        if seeded:
            sc.update(xb)
        xt = torch.from_numpy(sc.transform(xb))
        if isinstance(opt, Auto):
            ins, h = [xt], xt
            for mod in list(model)[:-1]:
                h = mod(h)
                if not isinstance(mod, nn.Linear):
                    ins.append(h.detach())
            opt.observe(ins)
        logits = model(xt)
        with torch.no_grad():
            if head == "linear":
                pred[b0:b0 + batch, 0] = logits[:, 0].numpy()
            elif head == "logistic":
                pred[b0:b0 + batch, 0] = torch.sigmoid(logits[:, 0]).numpy()
            else:
                pred[b0:b0 + batch] = torch.softmax(logits, 1).numpy()
        sd, mu = 1.0, 0.0
        if head == "linear":
            y64 = yb.astype(np.float64)
            wb, mb = len(y64), y64.mean()
            d = mb - ymean
            tot = yw + wb
            first = yw == 0
            ymean += d * wb / tot
            ym2 += ((y64 - mb) ** 2).sum() + d * d * yw * wb / tot
            yw = tot
            sd, mu = (math.sqrt(ym2 / yw) if ym2 > 0 else 1.0), ymean
            if first:
                with torch.no_grad():
                    ps[-2].mul_(sd)
                    ps[-1].mul_(sd).add_(mu)
                logits = model(xt)
            loss = ((logits[:, 0] - torch.from_numpy(yb)) ** 2).mean() / (sd * sd)
        elif head == "logistic":
            loss = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], torch.from_numpy(yb))
        else:
            loss = nn.functional.cross_entropy(logits, torch.from_numpy(yb).long())
        for p in ps:
            p.grad = None
        loss.backward()
        if all(torch.isfinite(p.grad).all() for p in ps):
            if head == "linear":
                with torch.no_grad():
                    ps[-2].div_(sd)
                    ps[-1].sub_(mu).div_(sd)
                    ps[-2].grad.mul_(sd)
                    ps[-1].grad.mul_(sd)
            opt.step(None)
            if head == "linear":
                with torch.no_grad():
                    ps[-2].mul_(sd)
                    ps[-1].mul_(sd).add_(mu)
        if not seeded:
            sc.update(xb)
    last = slice(n - meta["records"], n)
    yl = y[last]
    if head == "linear":
        p = pred[last, 0]
        if not np.all(np.isfinite(p)):
            return -math.inf
        return float(1 - ((yl - p) ** 2).sum() / ((yl - yl.mean()) ** 2).sum())
    if head == "logistic":
        return float(((pred[last, 0] >= 0.5) == (yl == 1)).mean())
    return float((pred[last].argmax(1) == yl).mean())


CANDIDATES = {
    "adam": lambda ps, lin, L: Adam(ps),
    "adagrad 0.01": lambda ps, lin, L: Adagrad(ps, 0.01),
    "adagrad 0.5": lambda ps, lin, L: Adagrad(ps, 0.5),
    "cocob": lambda ps, lin, L: Cocob(ps),
    "prodigy": lambda ps, lin, L: Prodigy(ps),
    "auto": lambda ps, lin, L: Auto(ps, linear=lin, layers=L),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--shapes", default=",32")
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.data_dir, "sets.json")))
    groups = {}
    for stream, m in meta.items():
        if m["seed"] < a.seeds and m["form"] != "std":  # std scores as raw once scaled online
            groups.setdefault((m["set"], m["form"]), []).append(stream)
    rows = []
    for shape in a.shapes.split(","):
        hidden = [int(h) for h in shape.split("x") if h]
        print("\nhidden %s: last-pass prequential score, mean of %d shuffles" % (shape or "-", a.seeds))
        names = ["adam*"] + list(CANDIDATES)
        print("%-22s" % "data set" + "".join("%13s" % n for n in names))
        for (name, form), streams in sorted(groups.items()):
            data = [(np.load(os.path.join(a.data_dir, s + ".npz")), meta[s]) for s in sorted(streams)]

            def mean_of(make):
                return float(np.mean([run(z["X"], z["y"], m, hidden, make, m["seed"]) for z, m in data]))

            grid = {lr: mean_of(lambda ps, lin, L, lr=lr: Adam(ps, lr)) for lr in GRID}
            best = max(grid, key=grid.get)
            row = {"set": name, "form": form, "hidden": shape, "adam_best_lr": best,
                   "adam*": grid[best], "adam_grid": grid}
            for cname, make in CANDIDATES.items():
                row[cname] = mean_of(make)
            rows.append(row)
            print("%-22s" % ("%s %s" % (name, form)) +
                  "".join("%13.3f" % row[n] if row[n] > -99 else "%13.0e" % row[n] for n in names),
                  flush=True)
    raw = {"shapes": a.shapes, "seeds": a.seeds,
           "rows": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in r.items()} for r in rows]}
    record = os.path.join(os.path.dirname(os.path.abspath(__file__)), "record.py")
    command = "bench/optim_candidates.py $BENCH_DATA/quality/data --shapes %s --seeds %d" % (
        a.shapes, a.seeds)
    subprocess.run([sys.executable, record, "optim_candidates", command],
                   input=json.dumps(raw), text=True, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
