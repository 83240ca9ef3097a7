#!/usr/bin/env python3
"""The PyTorch peer of `streamlearn run`: the Kafka worker a PyTorch user
writes with confluent-kafka, msgpack and torch. Consumes N samples from a
topic in a group, and per mini-batch: one forward pass, one prediction per
sample produced keyed like its input, one Adam step on the labelled samples.

  worker_torch.py --brokers B --group G --input-topic T --output-topic P \
                  --dim D --samples N [--batch-size 256] [--linger-ms 20]
"""
import argparse
import sys
import time

import msgpack
import torch
import torch.nn as nn
from confluent_kafka import Consumer, Producer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--input-topic", required=True)
    ap.add_argument("--output-topic", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--samples", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--linger-ms", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model = nn.Sequential(nn.Linear(a.dim, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    consumer = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": True})
    producer = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True,
                         "linger.ms": 5})
    consumer.subscribe([a.input_topic])
    packer = msgpack.Packer(use_single_float=True)
    done, step, t0 = 0, 0, time.perf_counter()
    while done < a.samples:
        msgs = consumer.consume(num_messages=a.batch_size, timeout=a.linger_ms / 1000)
        samples, keys = [], []
        for m in msgs:
            if m.error():
                continue
            s = msgpack.unpackb(m.value(), raw=False, strict_map_key=False)
            samples.append(s)
            keys.append(m.key())
        if not samples:
            continue
        x = torch.tensor([s["x"] for s in samples], dtype=torch.float32)
        logits = model(x)[:, 0]
        with torch.no_grad():
            p = torch.sigmoid(logits).tolist()
        for s, k, v in zip(samples, keys, p):
            while True:
                try:
                    producer.produce(a.output_topic, packer.pack(
                        {"id": s.get("id"), "pred": v, "version": 0, "step": step}), key=k)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        lab = [i for i, s in enumerate(samples) if s.get("y") is not None]
        if lab:
            y = torch.tensor([float(samples[i]["y"]) for i in lab])
            loss = loss_fn(logits[lab], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        done += len(samples)
    producer.flush(60)
    consumer.close()
    dt = time.perf_counter() - t0
    print(f"worker_torch: {done} samples in {dt:.2f} s, {done / dt:.0f} samples/s", file=sys.stderr)


if __name__ == "__main__":
    main()
