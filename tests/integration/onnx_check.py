#!/usr/bin/python3
"""onnx_check.py - checks streamlearn's ONNX files with ONNX's own tools
(checker with full_check, strict shape inference) and evaluates their graphs
with a small numpy evaluator of the operators they use (onnx 1.12 has no
reference evaluator), comparing the outputs with streamlearn's own.

  onnx_check.py graphs DIR
      every DIR/NAME.onnx, with DIR/NAME.x (float32 [N, dim], the graph's
      input) and DIR/NAME.expect (float32 [N, K]: what the model's forward pass
      and head give for those rows: the value, P(y=1) or K probabilities).
  onnx_check.py replay MODEL.onnx SAMPLES.msgpack PREDICTIONS.msgpack
                [--safetensors F] [--meta KEY=VALUE]...
      the samples as `streamlearn replay` read them (dense, bin, sparse and
      named features, mapped to x as docs/ONNX.md says) against the
      predictions replay wrote; --safetensors: the graph's weights (and
      scaler.shift, scaler.mult) must equal that file's tensors bit for bit
      (its scaler statistics aside); --meta: metadata_props that must hold.
  onnx_check.py replay-list FILE
      the replay check for every line of FILE (its arguments, shell-quoted),
      in one process.

Prints one line per model and a summary with the largest absolute and
relative differences; exits 1 on the first failed check.
"""
import json
import os
import shlex
import struct
import sys

import msgpack
import numpy as np
import onnx
from onnx import helper, numpy_helper

TOL = 1e-5
# The scaler's running statistics in a safetensors file: what the transform
# (scaler.shift, scaler.mult, in both files) came from, not part of the graph.
STATISTICS = ("scaler.var", "scaler.maxabs")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- evaluator
# Each operator as the ONNX specification defines it for opset 13, in the
# input's dtype (float32), written from the spec rather than from streamlearn.

def op_gemm(ins, a):
    A, B = ins[0], ins[1]
    if a.get("transA", 0):
        A = A.T
    if a.get("transB", 0):
        B = B.T
    y = np.float32(a.get("alpha", 1.0)) * (A @ B)
    if len(ins) > 2:
        y = y + np.float32(a.get("beta", 1.0)) * ins[2]
    return y


def op_softmax(ins, a):
    x = ins[0]
    axis = a.get("axis", -1)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def op_argmax(ins, a):
    x = ins[0]
    axis = a.get("axis", 0)
    if a.get("select_last_index", 0):
        flipped = np.flip(x, axis=axis)
        idx = x.shape[axis] - 1 - np.argmax(flipped, axis=axis)
    else:
        idx = np.argmax(x, axis=axis)  # first occurrence of the maximum
    idx = idx.astype(np.int64)
    return np.expand_dims(idx, axis) if a.get("keepdims", 1) else idx


def op_sigmoid(ins, a):
    with np.errstate(over="ignore"):
        return (np.float32(1) / (np.float32(1) + np.exp(-ins[0]))).astype(np.float32)


OPS = {
    "Sub": lambda ins, a: ins[0] - ins[1],
    "Mul": lambda ins, a: ins[0] * ins[1],
    "Gemm": op_gemm,
    "Relu": lambda ins, a: np.maximum(ins[0], np.float32(0)),
    "Tanh": lambda ins, a: np.tanh(ins[0]),
    "Sigmoid": op_sigmoid,
    "Softmax": op_softmax,
    "ArgMax": op_argmax,
    "Squeeze": lambda ins, a: np.squeeze(ins[0], axis=tuple(int(i) for i in ins[1])),
}


def evaluate(model, x):
    env = {"x": x}
    for init in model.graph.initializer:
        env[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type not in OPS or node.domain not in ("", "ai.onnx"):
            fail("%s: operator %s is not in the evaluator" % (node.name, node.op_type))
        for name in node.input:
            if name not in env:
                fail("%s: input %s is not computed before it" % (node.name, name))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        out = OPS[node.op_type]([env[n] for n in node.input], attrs)
        if out.dtype not in (np.float32, np.int64):
            fail("%s: %s produced %s" % (node.name, node.op_type, out.dtype))
        env[node.output[0]] = out
    return {o.name: env[o.name] for o in model.graph.output}


# ---------------------------------------------------------------- checks

def dims(vi):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in vi.type.tensor_type.shape.dim]


def props(model):
    return {p.key: p.value for p in model.metadata_props}


def check_model(path):
    """ONNX's checker and strict shape inference; the declared interface."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    opset = {o.domain: o.version for o in model.opset_import}
    if opset.get("", 0) < 13:
        fail("%s: opset %s, expected >= 13" % (path, opset))
    meta = props(model)
    dim = int(meta["feature_dim"])
    head = meta["head"]
    k = int(meta["classes"])
    ins = {i.name: i for i in model.graph.input}
    if list(ins) != ["x"] or dims(ins["x"]) != ["N", dim] or \
            ins["x"].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        fail("%s: input must be x float32 [N, %d], got %s" % (path, dim, ins))
    outs = {o.name: o for o in inferred.graph.output}
    want = {"pred": (onnx.TensorProto.INT64 if head == "softmax" else onnx.TensorProto.FLOAT, ["N"])}
    if head == "softmax":
        want["proba"] = (onnx.TensorProto.FLOAT, ["N", k])
    if sorted(outs) != sorted(want):
        fail("%s: outputs %s, expected %s" % (path, sorted(outs), sorted(want)))
    for name, (elem, shape) in want.items():
        if outs[name].type.tensor_type.elem_type != elem or dims(outs[name]) != shape:
            fail("%s: output %s is %s %s, expected %s %s" % (
                path, name, outs[name].type.tensor_type.elem_type, dims(outs[name]), elem, shape))
    # every intermediate value got a full shape from inference
    known = {v.name: dims(v) for v in inferred.graph.value_info}
    for node in model.graph.node:
        for name in node.output:
            if name not in want and (name not in known or 0 in known[name]):
                fail("%s: shape inference gave no shape for %s" % (path, name))
    return model, meta


class Diff:
    def __init__(self):
        self.abs = 0.0
        self.rel = 0.0
        self.values = 0
        self.near_ties = 0

    def compare(self, what, got, want):
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            fail("%s: shape %s, expected %s" % (what, got.shape, want.shape))
        d = np.abs(got - want)
        self.values += d.size
        if d.size:
            self.abs = max(self.abs, float(d.max()))
            big = np.abs(want) >= 0.01  # relative differences of values near 0 say little
            if big.any():
                self.rel = max(self.rel, float((d[big] / np.abs(want[big])).max()))
        bad = d > TOL * np.maximum(1.0, np.abs(want))
        if bad.any():
            i = np.argwhere(bad)[0]
            fail("%s: at %s got %r, expected %r (difference %g)" % (
                what, tuple(i), got[tuple(i)], want[tuple(i)], d[tuple(i)]))

    def classes(self, what, got, want, proba):
        """argmax classes must agree; one that differs is accepted only where
        the two classes' probabilities tie within the tolerance."""
        for i, (g, w) in enumerate(zip(got, want)):
            if int(g) != int(w):
                if abs(float(proba[i][int(g)]) - float(proba[i][int(w)])) > TOL:
                    fail("%s: row %d class %d, expected %d" % (what, i, g, w))
                self.near_ties += 1


def first_argmax(rows):
    return [int(np.argmax(r)) for r in rows]


def run_graphs(directory):
    total = Diff()
    names = sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".onnx"))
    if not names:
        fail("no .onnx files in " + directory)
    for name in names:
        base = os.path.join(directory, name)
        model, meta = check_model(base + ".onnx")
        dim, k = int(meta["feature_dim"]), int(meta["classes"])
        x = np.fromfile(base + ".x", dtype="<f4").reshape(-1, dim)
        expect = np.fromfile(base + ".expect", dtype="<f4").reshape(-1, k)
        out = evaluate(model, x)
        if meta["head"] == "softmax":
            total.compare(name + " proba", out["proba"], expect)
            total.classes(name + " pred", out["pred"], first_argmax(expect), expect)
        else:
            if out["pred"].dtype != np.float32:
                fail("%s: pred is %s" % (name, out["pred"].dtype))
            total.compare(name + " pred", out["pred"], expect[:, 0])
        print("ok - %s: checker, shape inference, %d rows equal" % (name, x.shape[0]))
    print("graphs: %d models, %d values, max abs diff %.3g, max rel diff %.3g (|v| >= 0.01), "
          "near ties %d"
          % (len(names), total.values, total.abs, total.rel, total.near_ties))


# ---------------------------------------------------------------- replay mode

def murmur3_x86_32(data, seed=0):
    """MurmurHash3_x86_32 (Austin Appleby's reference), for named features."""
    c1, c2, m = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & m
    n = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[:4 * n]):
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    tail = data[4 * n:]
    k = 0
    for i, b in enumerate(tail):
        k |= b << (8 * i)
    if tail:
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h


class Pairs(list):
    """A msgpack map as its (key, value) pairs: a key may repeat."""


def dense_x(x, dim):
    """x as the graph takes it: the dense vector after hashing (docs/ONNX.md)."""
    if isinstance(x, (bytes, bytearray)):
        return np.frombuffer(x, dtype="<f4").astype(np.float32)
    if not isinstance(x, Pairs):
        return np.array(x, dtype=np.float32)
    row = np.zeros(dim, dtype=np.float32)
    for key, value in x:
        if isinstance(key, str):
            j = murmur3_x86_32(key.encode("utf-8")) % dim
        elif isinstance(key, bytes):
            j = murmur3_x86_32(key) % dim
        else:
            j = key
        row[j] += np.float32(value)  # keys that map to one index (or repeat) add up
    return row


def read_msgpack(path):
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False, strict_map_key=False, object_pairs_hook=Pairs)
        for obj in unpacker:
            for item in obj if type(obj) is list else [obj]:
                yield dict(item)


def load_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8:8 + n])
    return {k: np.frombuffer(data, "<f4", int(np.prod(v["shape"])),
                             8 + n + v["data_offsets"][0]).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}


def run_replay(args, total):
    onnx_path, samples_path, preds_path = args[:3]
    rest = args[3:]
    model, meta = check_model(onnx_path)
    dim = int(meta["feature_dim"])
    while rest:
        flag, value = rest[0], rest[1]
        rest = rest[2:]
        if flag == "--meta":
            key, _, want = value.partition("=")
            if meta.get(key) != want:
                fail("%s: metadata %s = %r, expected %r" % (onnx_path, key, meta.get(key), want))
        elif flag == "--safetensors":
            tensors = load_safetensors(value)
            inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
            for name, t in tensors.items():
                if name in STATISTICS:
                    continue
                if name not in inits or inits[name].shape != t.shape or \
                        inits[name].tobytes() != t.astype("<f4").tobytes():
                    fail("%s: initializer %s differs from %s" % (onnx_path, name, value))
        else:
            fail("unknown flag " + flag)
    samples = list(read_msgpack(samples_path))
    preds = list(read_msgpack(preds_path))
    if len(samples) != len(preds) or not samples:
        fail("%d samples, %d predictions" % (len(samples), len(preds)))
    for p in preds:
        if "error" in p:
            fail("replay refused a sample: %s" % p["error"])
    x = np.stack([dense_x(s["x"], dim) for s in samples])
    out = evaluate(model, x)
    d = Diff()
    if meta["head"] == "softmax":
        proba = [p["proba"] for p in preds]
        d.compare("proba", out["proba"], proba)
        d.classes("pred", out["pred"], [p["pred"] for p in preds], proba)
    else:
        d.compare("pred", out["pred"], [p["pred"] for p in preds])
    print("ok - %s: %d samples equal replay's predictions; max abs diff %.3g, max rel diff %.3g "
          "(|v| >= 0.01), near ties %d" % (onnx_path, len(samples), d.abs, d.rel, d.near_ties))
    total.abs = max(total.abs, d.abs)
    total.rel = max(total.rel, d.rel)
    total.values += d.values
    total.near_ties += d.near_ties


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "graphs":
        run_graphs(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "replay":
        run_replay(sys.argv[2:], Diff())
    elif len(sys.argv) == 3 and sys.argv[1] == "replay-list":
        total, n = Diff(), 0
        with open(sys.argv[2]) as f:
            for line in f:
                if line.strip():
                    run_replay(shlex.split(line), total)
                    n += 1
        print("replay: %d models, %d values, max abs diff %.3g, max rel diff %.3g (|v| >= 0.01), "
              "near ties %d" % (n, total.values, total.abs, total.rel, total.near_ties))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
