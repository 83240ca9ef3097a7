#!/usr/bin/python3
"""make_fuzz_corpus.py - writes the seed corpus of fuzz/fuzz_decode.c into fuzz/corpus/decode/.

Each file is one control byte (head = b % 3, dim = 1 + (b >> 2) % 8, small
size limit when b & 0x80, framer chunk = 1 + b % 16) followed by msgpack
bytes. Run with /usr/bin/python3 (needs the msgpack package).
"""
import os
import struct
import sys

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus", "decode")


def ctl(head, dim, small=False, chunk=1):
    """The control byte for a head (0 linear, 1 logistic, 2 softmax) and dim 1..8."""
    for b in range(256):
        if b % 3 == head and 1 + (b >> 2) % 8 == dim and bool(b & 0x80) == small and \
                1 + b % 16 == chunk:
            return bytes([b])
    for b in range(256):  # any chunk size
        if b % 3 == head and 1 + (b >> 2) % 8 == dim and bool(b & 0x80) == small:
            return bytes([b])
    raise ValueError("no control byte")


def pack(o, **kw):
    return msgpack.packb(o, use_bin_type=True, **kw)


def seeds():
    x4 = [0.5, -1.25, 3.0, 0.0]
    yield "dense_logistic", ctl(1, 4) + pack({"id": 1, "x": x4, "y": 1})
    yield "dense_f32", ctl(0, 4) + pack({"id": "a", "x": x4, "y": 2.5}, use_single_float=True)
    yield "bin", ctl(0, 4) + pack({"x": struct.pack("<4f", *x4), "y": 1.0, "w": 2})
    yield "sparse_int", ctl(0, 4) + pack({"x": {0: 1.0, 3: -2}, "y": 0})
    yield "named", ctl(1, 8) + pack({"x": {"age": 3.0, "country=DE": 1, 2: 0.5}, "y": 0})
    yield "softmax", ctl(2, 4) + pack([{"x": x4, "y": c, "id": c} for c in range(3)])
    yield "softmax_float_label", ctl(2, 4) + pack({"x": x4, "y": 2.0})
    yield "mixed_array", ctl(0, 4) + pack([{"x": x4}, {"x": {1: 1}}, {"x": x4, "y": None}])
    yield "predict_only", ctl(1, 4) + pack({"id": None, "x": x4})
    yield "unknown_keys", ctl(0, 4) + pack({"meta": {"a": [[1, 2], {"b": None}]}, "x": x4, 7: True})
    yield "id_kinds", ctl(0, 4) + pack([{"id": v, "x": x4} for v in (True, -5, 1.5, b"\x00", "s" * 40)])
    yield "empty_array", ctl(0, 4) + pack([])
    yield "stream", ctl(0, 4, chunk=3) + b"".join(pack({"x": x4, "id": i}) for i in range(4))
    yield "stream_oversize", ctl(0, 4, chunk=7) + pack({"x": x4, "pad": "p" * 100}) + pack({"x": x4})
    # bad samples
    yield "short_x", ctl(0, 4) + pack([{"x": x4[:3]}, {"x": x4}])
    yield "nan_x", ctl(0, 4) + pack({"x": [1.0, float("nan"), 0, 0]})
    yield "inf_bin", ctl(0, 4) + pack({"x": struct.pack("<4f", 1, float("inf"), 0, 0)})
    yield "index_range", ctl(0, 4) + pack({"x": {40: 1.0, -1: 2}})
    yield "class_range", ctl(2, 4) + pack({"x": x4, "y": 7})
    yield "logistic_label", ctl(1, 4) + pack({"x": x4, "y": 0.5})
    yield "bad_weight", ctl(0, 4) + pack({"x": x4, "y": 1, "w": -1})
    yield "id_array", ctl(0, 4) + pack({"id": [1], "x": x4})
    yield "not_a_map", ctl(0, 4) + pack(["str", 5, {"x": x4}])
    # bad messages
    good = pack({"id": 1, "x": x4, "y": 1})
    yield "truncated", ctl(1, 4) + good[:-3]
    yield "trailing", ctl(1, 4) + good + b"\x00\x00\x00"
    yield "huge_array32", ctl(0, 4) + b"\xdd\x01\x00\x00\x00"
    yield "huge_map32", ctl(0, 4) + b"\x91\xdf\xff\xff\xff\xff\x01\x02"
    yield "huge_str32", ctl(0, 4) + b"\x81\xa1x\xdb\x7f\xff\xff\xff"
    yield "reserved_c1", ctl(0, 4) + b"\x81\xa1x\xc1"
    yield "deep", ctl(0, 4) + b"\x81\xa4meta" + b"\x91" * 12 + b"\x90"
    yield "too_big", ctl(0, 4, small=True) + pack({"x": x4, "pad": "p" * 80})
    yield "ext", ctl(0, 4) + pack({"x": x4, "t": msgpack.ExtType(5, b"abcd")})
    yield "scalar", ctl(0, 4) + pack(42)


def main():
    os.makedirs(OUT, exist_ok=True)
    n = 0
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        n += 1
    print("wrote %d seeds to %s" % (n, os.path.normpath(OUT)), file=sys.stderr)


if __name__ == "__main__":
    main()
