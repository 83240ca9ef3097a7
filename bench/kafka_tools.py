#!/usr/bin/env python3
"""Helpers for bench/kafka.sh (confluent-kafka):
  kafka_tools.py wait BROKERS TOPIC N [TIMEOUT_S]  waits until the topic's high
      watermarks add up to N; prints the seconds waited
  kafka_tools.py sample PID OUT                    every 10 ms until PID exits, appends
      "wall_s cpu_s" (the process's user+system CPU) to OUT
  kafka_tools.py steady BROKERS TOPIC SAMPLES      the steady-state span of a
      worker: from its first output's timestamp to its last, and the CPU it
      used between them (interpolated from SAMPLES), as JSON
Latency is measured by bench/latency_reader.c (bench/latency.sh).
"""
import os
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def consumer(brokers):
    return Consumer({"bootstrap.servers": brokers, "group.id": "bench-tools",
                     "enable.auto.commit": False})


def total(c, topic):
    md = c.list_topics(topic, timeout=10).topics[topic]
    return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
               for p in md.partitions)


def wait(brokers, topic, n, timeout=600):
    c = consumer(brokers)
    t0 = time.time()
    while total(c, topic) < n:
        if time.time() - t0 > timeout:
            sys.exit(f"timeout: {total(c, topic)} of {n} on {topic}")
        time.sleep(0.05)
    print(f"{time.time() - t0:.3f}")
    c.close()


def read_all(brokers, topic):
    c = consumer(brokers)
    md = c.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in md.partitions]
    ends = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    c.assign(parts)
    out, left = {}, sum(ends.values())
    while left > 0:
        for m in c.consume(10000, timeout=1):
            if not m.error():
                out[m.key()] = m.timestamp()[1]
                left -= 1
    c.close()
    return out


def sample(pid, out):
    tick = os.sysconf("SC_CLK_TCK")
    with open(out, "a") as f:
        while True:
            try:
                with open(f"/proc/{pid}/stat") as st:
                    fields = st.read().rsplit(")", 1)[1].split()
            except OSError:
                return
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            f.write(f"{time.time():.4f} {cpu:.3f}\n")
            f.flush()
            time.sleep(0.01)


def cpu_at(samples, t):
    """CPU seconds at wall time t, interpolated between samples."""
    prev = samples[0]
    for cur in samples:
        if cur[0] >= t:
            if cur[0] == prev[0]:
                return cur[1]
            return prev[1] + (cur[1] - prev[1]) * (t - prev[0]) / (cur[0] - prev[0])
        prev = cur
    return samples[-1][1]


def steady(brokers, topic, samples_file):
    ts = read_all(brokers, topic).values()
    first, last = min(ts) / 1000.0, max(ts) / 1000.0
    samples = [tuple(map(float, line.split())) for line in open(samples_file) if line.strip()]
    cpu = cpu_at(samples, last) - cpu_at(samples, first)
    print(json.dumps({"n": len(ts), "wall_s": round(last - first, 3), "cpu_s": round(cpu, 3),
                      "first": first, "last": last}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "wait":
        wait(sys.argv[2], sys.argv[3], int(sys.argv[4]), *(float(x) for x in sys.argv[5:]))
    elif cmd == "sample":
        sample(int(sys.argv[2]), sys.argv[3])
    elif cmd == "steady":
        steady(sys.argv[2], sys.argv[3], sys.argv[4])
