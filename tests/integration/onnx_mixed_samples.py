#!/usr/bin/python3
"""onnx_mixed_samples.py FILE DIM - hand-made predict-only samples whose x
mixes int and str keys: two names that hash to one index, a name and an int
key on one index, a repeated key, an empty map, a non-ASCII name and an
array of samples. Used by test_onnx_cli.sh to check the documented mapping
of sparse and named features to the dense input x."""
import os
import sys

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_check import murmur3_x86_32  # noqa: E402


def main():
    path, dim = sys.argv[1], int(sys.argv[2])
    names = ["w%d" % i for i in range(400)]
    index = {n: murmur3_x86_32(n.encode()) % dim for n in names}
    by_index = {}
    for n in names:
        by_index.setdefault(index[n], []).append(n)
    a, b = next(v[:2] for v in by_index.values() if len(v) >= 2)
    c = names[7]
    with open(path, "wb") as f:
        f.write(msgpack.packb({"id": 0, "x": {a: 1.5, b: -0.25, 3: 2.0}}))
        f.write(msgpack.packb({"id": 1, "x": {index[c]: 0.5, c: 1.0, "z": 3.0}}))
        f.write(msgpack.packb({"id": 2, "x": {}}))
        f.write(msgpack.packb([{"id": 3, "x": {0: 1.0, dim - 1: -1.0}},
                               {"id": 4, "x": {"caf\u00e9": 2.0}}]))
        # {"x": {"q": 1.0, "q": 2.0}}: a repeated key, which dicts cannot write
        f.write(b"\x81\xa1x\x82\xa1q\xcb\x3f\xf0" + b"\0" * 6 + b"\xa1q\xcb\x40" + b"\0" * 7)


if __name__ == "__main__":
    main()
