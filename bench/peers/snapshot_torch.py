#!/usr/bin/python3
"""The snapshot benchmark's PyTorch peer: how a PyTorch user checkpoints a
model and its Adam state to Redis and reads it back.

For a logistic model (nn.Linear(P-1, 1)) of P parameters after one Adam step:
  save:  torch.save({"model": model.state_dict(), "optim": opt.state_dict()})
         into a BytesIO, then one redis SET of the bytes (redis-py);
  load:  one redis GET, torch.load, model.load_state_dict, opt.load_state_dict.
The training loop is stopped for the whole save (PyTorch has no copy-then-
write-in-background step), so its pause equals its save time.

  snapshot_torch.py REDIS_URL PARAMS REPEATS   -> one JSON line (median ms)
"""
import io
import json
import statistics
import sys
import time

import redis
import torch


def main():
    url, params, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = torch.nn.Linear(params - 1, 1)
    opt = torch.optim.Adam(model.parameters())
    loss = model(torch.randn(1, params - 1)).sum()
    loss.backward()
    opt.step()
    r = redis.Redis.from_url(url)
    save, load, nbytes = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "optim": opt.state_dict()}, buf)
        blob = buf.getvalue()
        r.set("bench:torch", blob)
        t1 = time.perf_counter()
        state = torch.load(io.BytesIO(r.get("bench:torch")))
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        t2 = time.perf_counter()
        nbytes = len(blob)
        save.append((t1 - t0) * 1e3)
        load.append((t2 - t1) * 1e3)
    r.delete("bench:torch")
    print(json.dumps({"params": params, "bytes": nbytes, "repeats": repeats,
                      "save_ms": round(statistics.median(save), 3),
                      "load_ms": round(statistics.median(load), 3)}))


if __name__ == "__main__":
    main()
