#!/usr/bin/python3
"""Writes the PyTorch equivalence fixtures under tests/fixtures/torch/<case>/.

Each case is what a user would do in PyTorch: an nn.Sequential of Linear and
activation modules, a torch.optim optimizer, and the plain loop over
consecutive mini-batches (predict with the forward pass, then one step on the
weighted mean loss of the labelled rows). `streamlearn replay` with the flags
in args.txt, --init init.safetensors and --input input.msgpack must reproduce
expected.msgpack and final.safetensors to 1e-4 relative (README.md, "From PyTorch and back").

FTRL has no torch.optim peer: its cases come from a float32 numpy
implementation of McMahan et al. 2013, Algorithm 1, checked here against an
independent float64 closed-form implementation.

Files per case:
  args.txt           replay learning flags, one line
  init.safetensors   starting weights (nn.Sequential state_dict names)
  init.json          the same weights as JSON (name -> {"shape", "data"})
  input.msgpack      concatenated samples / arrays of samples (README.md, "Samples and predictions")
  expected.msgpack   one prediction map per sample (same section), version 0
  final.safetensors  weights after the last batch

Run with /usr/bin/python3 (needs torch, numpy, msgpack). Deterministic: the
same script writes the same bytes.
"""

import json
import math
import os
import shutil
import struct
import sys

import msgpack
import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "torch")

F32 = np.float32


# ----------------------------------------------------------------------------
# safetensors, written and read by hand (the python package is not available)


def st_encode(tensors, metadata=None):
    """tensors: list of (name, np.float32 array) in file order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs = []
    off = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    # The reference implementation pads the header with spaces to 8 bytes.
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs)


def st_decode(data):
    (n,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype="<f4")
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def state_tensors(model):
    return [(k, v.detach().numpy().copy()) for k, v in model.state_dict().items()]


# ----------------------------------------------------------------------------
# MurmurHash3_x86_32 (named features: README.md, "Samples and predictions")


def murmur3_32(data, seed=0):
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & 0xFFFFFFFF
    n = len(data)
    nblocks = n // 4
    for i in range(nblocks):
        (k,) = struct.unpack_from("<I", data, i * 4)
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    tail = data[nblocks * 4:]
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


# Published test vectors of MurmurHash3_x86_32.
assert murmur3_32(b"", 0) == 0
assert murmur3_32(b"", 1) == 0x514E28B7
assert murmur3_32(b"hello", 0) == 0x248BFA47
assert murmur3_32(b"The quick brown fox jumps over the lazy dog", 0) == 0x2E4FF723


# ----------------------------------------------------------------------------
# samples


class Sample:
    """One input sample: its wire map and the dense float32 row it means."""

    def __init__(self, wire, x, y, w, single):
        self.wire = wire      # dict to msgpack
        self.x = x            # np.float32 [dim]
        self.y = y            # float or None (unlabelled)
        self.w = w            # float32 weight (1 when absent)
        self.single = single  # pack floats as float32


def make_samples(rng, case):
    dim, head, n = case["dim"], case["head"], case["n"]
    k = case.get("classes", 1)
    truth = rng.normal(0, 1, size=(k if head == "softmax" else 1, dim)).astype(F32)
    samples = []
    for i in range(n):
        form = rng.choice(["dense", "dense", "dense", "bin", "sparse", "named"],
                          p=[0.2, 0.2, 0.15, 0.2, 0.15, 0.1])
        x = np.zeros(dim, dtype=F32)
        wire = {}
        single = False
        if form == "dense":
            vals = rng.normal(0, 1, size=dim).astype(F32)
            # A few integers: "array of numbers" covers them.
            ints = rng.random(dim) < 0.15
            vals[ints] = np.round(vals[ints] * 2).astype(F32)
            x[:] = vals
            single = bool(rng.random() < 0.3)
            wire["x"] = [int(v) if ints[j] else float(v) for j, v in enumerate(vals)]
        elif form == "bin":
            x[:] = rng.normal(0, 1, size=dim).astype(F32)
            wire["x"] = x.astype("<f4").tobytes()
        elif form == "sparse":
            idx = sorted(rng.choice(dim, size=max(1, dim // 3), replace=False).tolist())
            m = {}
            for j in idx:
                v = F32(rng.normal(0, 1.5))
                x[j] = v
                m[int(j)] = float(v)
            wire["x"] = m
        else:
            # Named features, hashed; plus one int key. No two keys may land
            # on the same index so the meaning is unambiguous.
            m = {}
            used = set()
            names = ["user_%d" % rng.integers(0, 1000), "item", "country=fr",
                     "hour_%d" % rng.integers(0, 24), "dev"]
            for name in names:
                j = murmur3_32(name.encode()) % dim
                if j in used:
                    continue
                used.add(j)
                v = F32(rng.normal(0, 1))
                x[j] = v
                m[name] = float(v)
            free = [j for j in range(dim) if j not in used]
            j = int(rng.choice(free))
            v = F32(rng.normal(0, 1))
            x[j] = v
            m[j] = float(v)
            wire["x"] = m

        logits = truth @ x
        labelled = rng.random() < 0.8
        y = None
        if labelled:
            if head == "linear":
                y = float(F32(logits[0] + rng.normal(0, 0.3)))
                wire["y"] = y
            elif head == "logistic":
                p = 1.0 / (1.0 + math.exp(-float(logits[0])))
                y = 1.0 if rng.random() < p else 0.0
                # 0/1 as int mostly, sometimes as float.
                wire["y"] = float(y) if rng.random() < 0.2 else int(y)
            else:
                c = int(np.argmax(logits + rng.normal(0, 0.5, size=k)))
                y = float(c)
                wire["y"] = c
        elif rng.random() < 0.3:
            wire["y"] = None  # nil: predict only

        w = F32(1.0)
        if rng.random() < 0.3:
            w = F32(rng.choice([0.5, 2.0, 3.0, 0.25, 1.5]))
            wire["w"] = float(w) if w != int(w) else int(w)

        r = rng.random()
        if r < 0.6:
            wire["id"] = i
        elif r < 0.85:
            wire["id"] = "s%d" % i
        # else: no id -> nil in the prediction
        samples.append(Sample(wire, x, y, w, single))
    return samples


def encode_input(rng, samples):
    """Concatenated top-level objects: single maps and arrays of 2-3 maps."""
    out = bytearray()
    i = 0
    while i < len(samples):
        if rng.random() < 0.2 and i + 1 < len(samples):
            grp = samples[i:i + int(rng.integers(2, 4))]
            single = any(s.single for s in grp)
            out += msgpack.packb([s.wire for s in grp], use_bin_type=True,
                                 use_single_float=single)
            i += len(grp)
        else:
            s = samples[i]
            out += msgpack.packb(s.wire, use_bin_type=True, use_single_float=s.single)
            i += 1
    return bytes(out)


def check_input_roundtrip(data, samples, dim):
    """Decodes input.msgpack the way the contract says and checks it means
    exactly the rows the reference trained on."""
    up = msgpack.Unpacker(raw=False, strict_map_key=False)
    up.feed(data)
    flat = []
    for o in up:
        flat.extend(o if isinstance(o, list) else [o])
    assert len(flat) == len(samples)
    for m, s in zip(flat, samples):
        x = np.zeros(dim, dtype=F32)
        v = m["x"]
        if isinstance(v, bytes):
            x[:] = np.frombuffer(v, dtype="<f4")
        elif isinstance(v, list):
            x[:] = np.array(v, dtype=F32)
        else:
            for key, val in v.items():
                j = key if isinstance(key, int) else murmur3_32(key.encode()) % dim
                x[j] += F32(val)
        assert np.array_equal(x, s.x), (m, s.x)


# ----------------------------------------------------------------------------
# the PyTorch loop


ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def build_model(case):
    dims = [case["dim"]] + case.get("hidden", [])
    out = case["classes"] if case["head"] == "softmax" else 1
    mods = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), ACTS[case["activation"]]()]
    mods.append(nn.Linear(dims[-1], out))
    return nn.Sequential(*mods)


def build_optimizer(case, params):
    o = case["opt"]
    kw = dict(case.get("torch", {}))
    if o == "sgd":
        return torch.optim.SGD(params, **kw)
    if o == "adam":
        return torch.optim.Adam(params, **kw)
    if o == "adamw":
        return torch.optim.AdamW(params, **kw)
    if o == "adagrad":
        return torch.optim.Adagrad(params, **kw)
    if o == "rmsprop":
        return torch.optim.RMSprop(params, **kw)
    raise ValueError(o)


def per_sample_loss(head, out, y):
    if head == "linear":
        return nn.MSELoss(reduction="none")(out[:, 0], y)
    if head == "logistic":
        return nn.BCEWithLogitsLoss(reduction="none")(out[:, 0], y)
    return nn.CrossEntropyLoss(reduction="none")(out, y.long())


def outputs_to_preds(head, out):
    """Per-row (pred, proba) from the forward pass."""
    res = []
    if head == "linear":
        for v in out[:, 0].tolist():
            res.append((v, None))
    elif head == "logistic":
        for v in torch.sigmoid(out[:, 0]).tolist():
            res.append((v, None))
    else:
        proba = torch.softmax(out, dim=1)
        for row in proba.tolist():
            res.append((int(np.argmax(row)), row))
    return res


def run_torch(case, samples, init_state):
    model = build_model(case)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in init_state.items()})
    opt = build_optimizer(case, model.parameters())
    bs = case["batch"]
    preds = []
    step = 0
    clipped = 0
    for b0 in range(0, len(samples), bs):
        batch = samples[b0:b0 + bs]
        xb = torch.from_numpy(np.stack([s.x for s in batch]))
        out = model(xb)
        for p, pr in outputs_to_preds(case["head"], out.detach()):
            preds.append((p, pr, step))
        lab = [i for i, s in enumerate(batch) if s.y is not None]
        if not lab:
            continue
        idx = torch.tensor(lab)
        y = torch.tensor([batch[i].y for i in lab], dtype=torch.float32)
        w = torch.tensor([batch[i].w for i in lab], dtype=torch.float32)
        l = per_sample_loss(case["head"], out[idx], y)
        loss = (w * l).sum() / w.sum()
        opt.zero_grad()
        loss.backward()
        if "clip" in case:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), case["clip"])
            clipped += int(norm.item() > case["clip"])
        opt.step()
        step += 1
    if "clip" in case:
        assert clipped > 0, "%s: clipping never triggered" % case["name"]
    return preds, state_tensors(model)


def run_numpy_sgd(case, samples, init_state):
    """Float64 numpy re-derivation of plain SGD (no hidden layer, momentum and
    weight decay 0) with hand-written gradients: checks the torch loop's
    batching, masking, weighting and loss conventions."""
    W = init_state["0.weight"].astype(np.float64)
    b = init_state["0.bias"].astype(np.float64)
    lr, bs, head = case["torch"]["lr"], case["batch"], case["head"]
    preds = []
    for b0 in range(0, len(samples), bs):
        batch = samples[b0:b0 + bs]
        xb = np.stack([s.x for s in batch]).astype(np.float64)
        z = xb @ W.T + b
        if head == "linear":
            preds += [(v, None) for v in z[:, 0]]
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            pr = e / e.sum(axis=1, keepdims=True)
            preds += [(int(np.argmax(r)), r) for r in pr]
        lab = [i for i, s in enumerate(batch) if s.y is not None]
        if not lab:
            continue
        y = np.array([batch[i].y for i in lab])
        w = np.array([batch[i].w for i in lab], dtype=np.float64)
        if head == "linear":
            d = (2 * (z[lab, 0] - y))[:, None]
        else:
            d = pr[lab].copy()
            d[np.arange(len(lab)), y.astype(int)] -= 1
        d = d * (w / w.sum())[:, None]
        W -= lr * d.T @ xb[lab]
        b -= lr * d.sum(axis=0)
    return preds, [("0.weight", W), ("0.bias", b)]


# ----------------------------------------------------------------------------
# FTRL-Proximal (McMahan et al. 2013, Algorithm 1), per coordinate


def ftrl_grad(case, Wt, bt, xb, yb, wb):
    """Gradient of sum(w*loss)/sum(w) for a model without hidden layers,
    float32 throughout; Wt [1, dim], bt [1]."""
    z = xb @ Wt[0] + bt[0]
    if case["head"] == "logistic":
        d = (F32(1) / (F32(1) + np.exp(-z))) - yb
    else:
        d = F32(2) * (z - yb)
    d = (wb * d / wb.sum()).astype(F32)
    gW = (d @ xb).astype(F32)[None, :]
    gb = np.array([d.sum()], dtype=F32)
    return gW, gb


def ftrl_forward(case, W, b, xb):
    z = (xb @ W[0] + b[0]).astype(F32)
    if case["head"] == "logistic":
        return (F32(1) / (F32(1) + np.exp(-z))).astype(F32)
    return z


def run_ftrl(case, samples, init_state, dtype=F32):
    """The float32 reference (dtype F32)."""
    alpha, beta = dtype(case["ftrl"]["alpha"]), dtype(case["ftrl"]["beta"])
    l1, l2 = dtype(case["ftrl"]["l1"]), dtype(case["ftrl"]["l2"])
    W = init_state["0.weight"].astype(dtype)
    b = init_state["0.bias"].astype(dtype)
    w = np.concatenate([W.ravel(), b]).astype(dtype)
    zacc = (-w * (beta / alpha + l2) - np.sign(w) * l1).astype(dtype)
    nacc = np.zeros_like(w)

    def weights():
        shrunk = np.where(np.abs(zacc) <= l1, dtype(0),
                          -(zacc - np.sign(zacc) * l1) / ((beta + np.sqrt(nacc)) / alpha + l2))
        return shrunk.astype(dtype)

    dim = case["dim"]
    preds, step = [], 0
    w = weights()
    for b0 in range(0, len(samples), case["batch"]):
        batch = samples[b0:b0 + case["batch"]]
        xb = np.stack([s.x for s in batch]).astype(dtype)
        Wc, bc = w[:dim][None, :], w[dim:]
        for v in ftrl_forward(case, Wc, bc, xb).tolist():
            preds.append((v, None, step))
        lab = [i for i, s in enumerate(batch) if s.y is not None]
        if not lab:
            continue
        yb = np.array([batch[i].y for i in lab], dtype=dtype)
        wb = np.array([batch[i].w for i in lab], dtype=dtype)
        gW, gb = ftrl_grad(case, Wc, bc, xb[lab], yb, wb)
        g = np.concatenate([gW.ravel(), gb]).astype(dtype)
        sigma = ((np.sqrt(nacc + g * g) - np.sqrt(nacc)) / alpha).astype(dtype)
        zacc = (zacc + g - sigma * w).astype(dtype)
        nacc = (nacc + g * g).astype(dtype)
        w = weights()
        step += 1
    final = [("0.weight", w[:dim][None, :].astype(F32)), ("0.bias", w[dim:].astype(F32))]
    return preds, final


def run_ftrl_closed_form(case, samples, init_state):
    """Float64 check of run_ftrl in the telescoped form of the paper: keeps
    sum g, sum sigma_s*w_s and sum sigma_s (instead of z and n) and solves the
    per-coordinate argmin of g_{1:t}.w + 1/2 sum_s sigma_s (w - w_s)^2
    + l1|w| + 1/2 l2 w^2 in closed form (soft-thresholding)."""
    a, bt = case["ftrl"]["alpha"], case["ftrl"]["beta"]
    l1, l2 = case["ftrl"]["l1"], case["ftrl"]["l2"]
    dim = case["dim"]
    w0 = np.concatenate([init_state["0.weight"].ravel(), init_state["0.bias"]]).astype(np.float64)
    sum_g = np.zeros_like(w0)
    # The start acts as a proximal term of weight beta/alpha + l2 at w0, so
    # that the first prediction uses w0 itself.
    sum_sw = (bt / a + l2) * w0
    sum_s = np.full_like(w0, bt / a)
    nacc = np.zeros_like(w0)

    def solve():
        # minimise sum_g*w + 1/2 sum_s w^2 - sum_sw*w + l1|w| + 1/2 l2 w^2
        lin = sum_g - sum_sw
        # z_0 carries -sign(w0)*l1 so that w0 survives the first shrinkage;
        # z keeps that term forever.
        zz = lin - np.sign(w0) * l1
        return np.where(np.abs(zz) <= l1, 0.0, -(zz - np.sign(zz) * l1) / (sum_s + l2))

    preds, step = [], 0
    w = solve()
    for b0 in range(0, len(samples), case["batch"]):
        batch = samples[b0:b0 + case["batch"]]
        xb = np.stack([s.x for s in batch]).astype(np.float64)
        z = xb @ w[:dim] + w[dim]
        p = 1 / (1 + np.exp(-z)) if case["head"] == "logistic" else z
        for v in p.tolist():
            preds.append((v, None, step))
        lab = [i for i, s in enumerate(batch) if s.y is not None]
        if not lab:
            continue
        yb = np.array([batch[i].y for i in lab])
        wb = np.array([batch[i].w for i in lab], dtype=np.float64)
        d = p[lab] - yb if case["head"] == "logistic" else 2 * (p[lab] - yb)
        d = wb * d / wb.sum()
        g = np.concatenate([d @ xb[lab], [d.sum()]])
        sigma = (np.sqrt(nacc + g * g) - np.sqrt(nacc)) / a
        sum_g += g
        sum_sw += sigma * w
        sum_s += sigma
        nacc += g * g
        w = solve()
        step += 1
    return preds, w


# ----------------------------------------------------------------------------
# cases

# Every flag is written explicitly in args.txt and passed to torch with the
# same value, except in the *_defaults cases, which leave the optimizer flags
# out on both sides to check that our defaults are torch.optim's.


def sgd(lr, momentum=0.0, wd=0.0, nesterov=False):
    args = "--optimizer sgd --lr %r --momentum %r --weight-decay %r" % (lr, momentum, wd)
    if nesterov:
        args += " --nesterov"
    return "sgd", args, dict(lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov,
                             dampening=0)


def adam(name, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0):
    args = "--optimizer %s --lr %r --beta1 %r --beta2 %r --eps %r --weight-decay %r" % (
        name, lr, b1, b2, eps, wd)
    return name, args, dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)


def adagrad(lr, eps=1e-10, wd=0.0):
    args = "--optimizer adagrad --lr %r --eps %r --weight-decay %r" % (lr, eps, wd)
    return "adagrad", args, dict(lr=lr, eps=eps, weight_decay=wd, lr_decay=0,
                                 initial_accumulator_value=0)


def rmsprop(lr, alpha=0.99, eps=1e-8, momentum=0.0, wd=0.0):
    args = "--optimizer rmsprop --lr %r --alpha %r --eps %r --momentum %r --weight-decay %r" % (
        lr, alpha, eps, momentum, wd)
    return "rmsprop", args, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                                 weight_decay=wd, centered=False)


def defaults(name):
    return name, "--optimizer %s" % name, {}


def ftrl(alpha, beta, l1, l2, explicit=True):
    args = "--optimizer ftrl"
    if explicit:
        args += " --ftrl-alpha %r --ftrl-beta %r --l1 %r --l2 %r" % (alpha, beta, l1, l2)
    return "ftrl", args, dict(alpha=alpha, beta=beta, l1=l1, l2=l2)


CASES = [
    # linear head
    dict(name="linear_sgd_b1", head="linear", dim=6, n=24, batch=1, opt=sgd(0.02)),
    dict(name="linear_sgd_nesterov_wd_tanh_b4", head="linear", dim=8, n=30, batch=4,
         hidden=[8], activation="tanh", opt=sgd(0.01, momentum=0.9, wd=1e-3, nesterov=True)),
    dict(name="linear_adam_b16", head="linear", dim=10, n=56, batch=16, opt=adam("adam", 0.05)),
    dict(name="linear_adamw_relu_b4", head="linear", dim=8, n=30, batch=4, hidden=[6],
         activation="relu", opt=adam("adamw", 0.01, b1=0.8, b2=0.99, eps=1e-6, wd=0.05)),
    dict(name="linear_adagrad_clip_b4", head="linear", dim=6, n=30, batch=4,
         opt=adagrad(0.1, wd=1e-3), clip=0.5),
    dict(name="linear_rmsprop_momentum_sigmoid_b4", head="linear", dim=8, n=30, batch=4,
         hidden=[6], activation="sigmoid",
         opt=rmsprop(0.005, alpha=0.9, eps=1e-7, momentum=0.5, wd=1e-4)),
    # logistic head
    dict(name="logistic_sgd_momentum_clip_b4", head="logistic", dim=8, n=32, batch=4,
         opt=sgd(0.1, momentum=0.9, wd=0.01), clip=0.3),
    dict(name="logistic_adam_relu_b4", head="logistic", dim=8, n=30, batch=4, hidden=[8],
         activation="relu", opt=adam("adam", 0.01, wd=1e-3)),
    dict(name="logistic_adamw_b1", head="logistic", dim=5, n=20, batch=1,
         opt=adam("adamw", 0.02, wd=0.01)),
    dict(name="logistic_adagrad_2hidden_tanh_b4", head="logistic", dim=8, n=30, batch=4,
         hidden=[6, 4], activation="tanh", opt=adagrad(0.05)),
    dict(name="logistic_rmsprop_b16", head="logistic", dim=12, n=56, batch=16,
         opt=rmsprop(0.01)),
    # softmax head
    dict(name="softmax_sgd_b4", head="softmax", dim=8, classes=3, n=30, batch=4,
         opt=sgd(0.1)),
    dict(name="softmax_adam_relu_clip_b4", head="softmax", dim=8, classes=4, n=30, batch=4,
         hidden=[8], activation="relu", opt=adam("adam", 0.01), clip=1.0),
    dict(name="softmax_adamw_sigmoid_b16", head="softmax", dim=10, classes=3, n=56, batch=16,
         hidden=[6], activation="sigmoid", opt=adam("adamw", 0.01, wd=0.1)),
    dict(name="softmax_adagrad_b1", head="softmax", dim=6, classes=3, n=20, batch=1,
         opt=adagrad(0.1, eps=1e-8, wd=1e-3)),
    dict(name="softmax_rmsprop_momentum_tanh_b4", head="softmax", dim=8, classes=3, n=30,
         batch=4, hidden=[8], activation="tanh", opt=rmsprop(0.005, momentum=0.9, wd=1e-3)),
    # defaults (optimizer flags left out on both sides)
    dict(name="logistic_adam_defaults_b4", head="logistic", dim=8, n=30, batch=4,
         opt=defaults("adam")),
    dict(name="softmax_adamw_defaults_relu_b4", head="softmax", dim=8, classes=3, n=30,
         batch=4, hidden=[6], activation="relu", opt=defaults("adamw")),
    # FTRL (numpy reference)
    dict(name="ftrl_logistic_l1l2_b4", head="logistic", dim=8, n=40, batch=4,
         opt=ftrl(0.1, 1.0, 0.01, 0.001)),
    dict(name="ftrl_linear_b1", head="linear", dim=6, n=24, batch=1,
         opt=ftrl(0.05, 0.5, 0.0, 0.01)),
    dict(name="ftrl_logistic_defaults_b16", head="logistic", dim=10, n=56, batch=16,
         opt=ftrl(0.1, 1.0, 0.0, 0.0, explicit=False)),
]


def model_args(case):
    args = "--model %s --dim %d" % (case["head"], case["dim"])
    if case["head"] == "softmax":
        args += " --classes %d" % case["classes"]
    if case.get("hidden"):
        args += " --hidden %s --activation %s" % (",".join(map(str, case["hidden"])),
                                                    case["activation"])
    return args


def close(a, b, tol=1e-4):
    return abs(a - b) <= tol * max(1.0, abs(b))


def write_case(idx, case):
    name = case["name"]
    kind, opt_args, opt_kw = case["opt"]
    case = dict(case, opt=kind, torch=opt_kw)
    if kind == "ftrl":
        case["ftrl"] = opt_kw
        assert not case.get("hidden") and case["head"] != "softmax"
    rng = np.random.default_rng(1000 + idx)
    torch.manual_seed(1000 + idx)

    model = build_model(case)
    init = state_tensors(model)
    init_state = dict(init)
    samples = make_samples(rng, case)
    input_bytes = encode_input(rng, samples)
    check_input_roundtrip(input_bytes, samples, case["dim"])

    if kind == "ftrl":
        preds, final = run_ftrl(case, samples, init_state)
        ref_preds, ref_w = run_ftrl_closed_form(case, samples, init_state)
        got_w = np.concatenate([final[0][1].ravel(), final[1][1]])
        for (p, _, s), (q, _, t) in zip(preds, ref_preds):
            assert s == t and close(p, q), (name, p, q)
        assert all(close(float(a), float(b)) for a, b in zip(got_w, ref_w)), name
    else:
        preds, final = run_torch(case, samples, init_state)
        if kind == "sgd" and not case.get("hidden") and case["head"] != "logistic" \
                and opt_kw["momentum"] == 0 and opt_kw["weight_decay"] == 0:
            ref_preds, ref_final = run_numpy_sgd(case, samples, init_state)
            for (p, pr, _), (q, qr) in zip(preds, ref_preds):
                assert close(p, q), (name, p, q)
                assert pr is None or all(close(a, b) for a, b in zip(pr, qr)), name
            for (_, a), (_, b) in zip(final, ref_final):
                assert np.allclose(a, b, rtol=1e-5, atol=1e-5), name
            print("  numpy SGD re-derivation agrees")

    args = " ".join([model_args(case), opt_args, "--batch-size %d" % case["batch"]])
    if "clip" in case:
        args += " --clip-norm %r" % case["clip"]

    d = os.path.join(OUT_DIR, name)
    os.makedirs(d, exist_ok=True)
    meta = {"format": "pt", "source": "scripts/gen_torch_fixtures.py"}
    init_bytes = st_encode(init, meta)
    final_bytes = st_encode(final, meta)
    # Reading our own files back gives the same numbers.
    for blob, tensors in ((init_bytes, init), (final_bytes, final)):
        back = st_decode(blob)
        assert list(back) == [k for k, _ in tensors]
        assert all(np.array_equal(back[k], v) for k, v in tensors)

    expected = bytearray()
    for s, (p, proba, step) in zip(samples, preds):
        m = {"id": s.wire.get("id"), "pred": p}
        if proba is not None:
            m["proba"] = proba
        m["version"] = 0
        m["step"] = step
        expected += msgpack.packb(m, use_bin_type=True)

    with open(os.path.join(d, "args.txt"), "w") as f:
        f.write(args + "\n")
    with open(os.path.join(d, "init.safetensors"), "wb") as f:
        f.write(init_bytes)
    with open(os.path.join(d, "init.json"), "w") as f:
        json.dump({k: {"shape": list(v.shape), "data": [float(x) for x in v.ravel()]}
                   for k, v in init}, f)
        f.write("\n")
    with open(os.path.join(d, "input.msgpack"), "wb") as f:
        f.write(input_bytes)
    with open(os.path.join(d, "expected.msgpack"), "wb") as f:
        f.write(bytes(expected))
    with open(os.path.join(d, "final.safetensors"), "wb") as f:
        f.write(final_bytes)
    n_lab = sum(s.y is not None for s in samples)
    print("%-38s %3d samples (%d labelled)  %s" % (name, len(samples), n_lab, args))


def main():
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(OUT_DIR)
    for i, case in enumerate(CASES):
        write_case(i, case)


if __name__ == "__main__":
    sys.exit(main())
