#!/usr/bin/python3
"""Writes one benchmark's results with the facts a reader needs to trust them.

    bench/record.py NAME COMMAND [RAW.json]      (raw JSON on stdin without RAW.json)

writes bench/results/NAME.json:

    {"benchmark": NAME, "command": COMMAND, "date": "2026-11-27T07:03:51Z",
     "machine": {"nproc", "cpu", "mem_gib", "os", "software": {...}},
     "results": <the raw JSON, as the benchmark printed it>}

Every benchmark script ends with it, e.g. `echo "$json" | $py bench/record.py
replay "bench/replay.sh $n"`. bench/figures.py renders the figures in
README.md and docs/BENCHMARKS.md from these files only, so a figure always
carries the machine, date and command of the run it comes from.
"""
import json
import os
import platform
import subprocess
import sys
import time

# Software whose version moves the figures, by its Debian package.
PACKAGES = {
    "librdkafka": "librdkafka1",
    "OpenBLAS": "libopenblas0-pthread",
    "redis-server": "redis-server",
    "hiredis": "libhiredis0.14",
    "msgpack-c": "libmsgpackc2",
    "PyTorch": "python3-torch",
}


def upstream_version(debian_version):
    """'1:2.0.2+ds-1' -> '2.0.2': the upstream part of a Debian version."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0].split("+")[0].split("~")[0]


def software():
    out = {}
    for name, pkg in PACKAGES.items():
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                               text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            continue
        if v:
            out[name] = upstream_version(v)
    return out


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1),
            "os": platform.platform(), "software": software()}


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.split("\n\n")[1])
    name, command = argv[1], argv[2]
    raw = open(argv[3]).read() if len(argv) == 4 else sys.stdin.read()
    record = {"benchmark": name, "command": command,
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), "results": json.loads(raw)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "bench", "results", name + ".json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print("wrote", os.path.relpath(path, root))


if __name__ == "__main__":
    main(sys.argv)
