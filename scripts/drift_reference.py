#!/usr/bin/python3
"""Reference implementations of the two drift detectors in model/drift.c, and
the test vectors the C unit tests check against (tests/fixtures/drift/).

python3-river is not packaged for Debian, so the vectors come from this
file, written from the published definitions and matching River's
implementation choices (River 0.22 and later):

Page-Hinkley (E. S. Page, 1954, "Continuous inspection schemes"), as
river.drift.PageHinkley: a running mean m_t of everything since the last
reset (Welford's update m += (x - m) / n), and two fading cumulative sums

    up_t   = alpha * up_{t-1}   + (x_t - m_t) - delta
    down_t = alpha * down_{t-1} + (x_t - m_t) + delta

with their running extremes min(up) (starting at +inf) and max(down)
(starting at -1, as River does). After min_instances values, a drift is
flagged when up_t - min(up) > threshold (mode "up"), max(down) - down_t >
threshold (mode "down"), or either ("both"). Defaults: min_instances 30,
delta 0.005, threshold 50, alpha 1 - 1e-4.

ADWIN (A. Bifet and R. Gavalda, 2007, "Learning from time-changing data with
adaptive windowing"), the ADWIN2 exponential histogram as river.drift.ADWIN:
rows of buckets of 2^i values each, at most max_buckets per row (a row that
reaches max_buckets + 1 merges its two oldest into the next row); every
`clock` values, once the window is longer than grace_period, every cut into an
older part W0 and a newer part W1 (at bucket boundaries, oldest first, both at
least min_window_length long) is tested with

    eps = sqrt(2 m sigma^2 d') + 2/3 d' m,
    d'  = ln(2 ln(width) / delta),  m = 1/(n0 - mwl + 1) + 1/(n1 - mwl + 1),

sigma^2 the window's variance; |mean(W0) - mean(W1)| > eps drops the oldest
bucket and the scan restarts. Every bucket of a row is a cut candidate (River
0.22 aligned this with MOA, whose loop includes the last bucket of each row).
Defaults: delta 0.002, clock 32, max_buckets 5, min_window_length 5,
grace_period 10.

Both detectors, like River's, start again from nothing on the value after the
one that flagged a drift.

Run with --check to compare against the examples in River's documentation,
or with --write DIR to (re)write the vectors.
"""
import json
import math
import random
import sys


class PageHinkley:
    def __init__(self, min_instances=30, delta=0.005, threshold=50.0, alpha=1 - 0.0001,
                 mode="both"):
        self.min_instances, self.delta, self.threshold = min_instances, delta, threshold
        self.alpha, self.mode = alpha, mode
        self.drift = False
        self.reset()

    def reset(self):
        self.n = 0.0
        self.mean = 0.0
        self.up = 0.0
        self.down = 0.0
        self.min_up = math.inf
        self.max_down = -1.0

    def update(self, x):
        if self.drift:
            self.reset()
        self.n += 1.0
        self.mean += 1.0 * (x - self.mean) / self.n
        dev = x - self.mean
        self.up = self.alpha * self.up + dev - self.delta
        self.down = self.alpha * self.down + dev + self.delta
        if self.up < self.min_up:
            self.min_up = self.up
        if self.down > self.max_down:
            self.max_down = self.down
        self.drift = False
        if self.n >= self.min_instances:
            inc = self.up - self.min_up > self.threshold
            dec = self.max_down - self.down > self.threshold
            self.drift = {"up": inc, "down": dec, "both": inc or dec}[self.mode]
        return self.drift

    def state(self):
        return {"n": self.n, "mean": self.mean, "up": self.up, "down": self.down,
                "min_up": self.min_up, "max_down": self.max_down}


class Adwin:
    def __init__(self, delta=0.002, clock=32, max_buckets=5, min_window_length=5,
                 grace_period=10):
        self.delta, self.clock, self.max_buckets = delta, clock, max_buckets
        self.mwl, self.grace = min_window_length, grace_period
        self.drift = False
        self.detections = 0
        self.reset()

    def reset(self):
        # rows[i] holds [total, variance] pairs of buckets of 2^i values, oldest first
        self.rows = [[]]
        self.width = 0.0
        self.total = 0.0
        self.variance = 0.0
        self.tick = 0

    def _insert(self, x):
        self.rows[0].append([x, 0.0])
        self.width += 1.0
        if self.width > 1.0:
            d = x - self.total / (self.width - 1.0)
            self.variance += (self.width - 1.0) * d * d / self.width
        self.total += x
        i = 0
        while i < len(self.rows) and len(self.rows[i]) == self.max_buckets + 1:
            if i + 1 == len(self.rows):
                self.rows.append([])
            n1 = float(1 << i)
            (t1, v1), (t2, v2) = self.rows[i][0], self.rows[i][1]
            mu1, mu2 = t1 / n1, t2 / n1
            self.rows[i + 1].append([t1 + t2, v1 + v2 + n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)])
            del self.rows[i][:2]
            if len(self.rows[i + 1]) <= self.max_buckets:
                break
            i += 1

    def _drop_oldest(self):
        last = len(self.rows) - 1
        n = float(1 << last)
        u, v = self.rows[last][0]
        mu = u / n
        self.width -= n
        self.total -= u
        mu_w = self.total / self.width
        self.variance -= v + n * self.width * (mu - mu_w) * (mu - mu_w) / (n + self.width)
        del self.rows[last][0]
        if not self.rows[last]:
            self.rows.pop()
        return n

    def _cut(self, n0, n1, dmean):
        dprime = math.log(2.0 * math.log(self.width) / self.delta)
        m = 1.0 / (n0 - self.mwl + 1) + 1.0 / (n1 - self.mwl + 1)
        eps = math.sqrt(2.0 * m * (self.variance / self.width) * dprime) + 2.0 / 3.0 * dprime * m
        return abs(dmean) > eps

    def _detect(self):
        found = False
        self.tick += 1
        if self.tick % self.clock != 0 or not self.width > self.grace:
            return False
        again = True
        while again:
            again = False
            n0, n1, u0, u1 = 0.0, self.width, 0.0, self.total
            done = False
            for i in range(len(self.rows) - 1, -1, -1):
                if done:
                    break
                size = float(1 << i)
                row = self.rows[i]
                for k in range(len(row)):
                    n0 += size
                    n1 -= size
                    u0 += row[k][0]
                    u1 -= row[k][0]
                    if i == 0 and k == len(row) - 1:
                        done = True
                        break
                    if n1 >= self.mwl and n0 >= self.mwl and self._cut(n0, n1, u0 / n0 - u1 / n1):
                        again = found = True
                        if self.width > 0:
                            n0 -= self._drop_oldest()
                            done = True
                            break
        return found

    def update(self, x):
        if self.drift:
            self.reset()
        self._insert(x)
        self.drift = self._detect()
        if self.drift:
            self.detections += 1
        return self.drift

    def state(self):
        return {"width": self.width, "total": self.total, "variance": self.variance,
                "rows": [len(r) for r in self.rows]}


def river_doc_stream():
    """The stream of River's PageHinkley and ADWIN docstring examples."""
    rng = random.Random(12345)
    return rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)


def alarms(det, xs):
    return [i for i, x in enumerate(xs) if det.update(x)]


def bernoulli(rng, p, n):
    return [1.0 if rng.random() < p else 0.0 for _ in range(n)]


def cases():
    """The fixed sequences of the unit tests and every detector's alarms on each."""
    rng = random.Random(20240611)
    doc = [float(v) for v in river_doc_stream()]
    # An error stream (0 = right, 1 = wrong): a good model at 8% error, a sudden
    # change to 45%, back to 8%, then a slow rise.
    err = bernoulli(rng, 0.08, 3000) + bernoulli(rng, 0.45, 1500) + bernoulli(rng, 0.08, 2500)
    err += [1.0 if rng.random() < 0.08 + 0.3 * i / 4000 else 0.0 for i in range(4000)]
    # A loss-like stream: log-normal losses whose level doubles, then halves.
    loss = [math.exp(rng.gauss(-1.0, 0.8)) for _ in range(2500)]
    loss += [2.0 * math.exp(rng.gauss(-1.0, 0.8)) for _ in range(2500)]
    loss += [math.exp(rng.gauss(-1.0, 0.8)) for _ in range(2500)]
    # Long and stationary: deep bucket rows and wide windows, no alarm expected.
    flat = bernoulli(rng, 0.2, 20000)
    # A decreasing loss (a model still learning): "both" and "down" flag it, "up" must not.
    learning = [0.7 * math.exp(-i / 800.0) + 0.05 * rng.random() for i in range(3000)]
    streams = {"river_doc": doc, "errors": err, "loss": loss, "flat": flat, "learning": learning}
    detectors = [
        ("ph_both", lambda: PageHinkley(mode="both")),
        ("ph_up", lambda: PageHinkley(mode="up")),
        ("ph_down", lambda: PageHinkley(mode="down")),
        ("ph_custom", lambda: PageHinkley(min_instances=10, delta=0.01, threshold=5.0,
                                          alpha=0.999, mode="up")),
        ("adwin", lambda: Adwin()),
        ("adwin_custom", lambda: Adwin(delta=0.05, clock=8, max_buckets=3, min_window_length=3,
                                       grace_period=20)),
    ]
    out = []
    for sname, xs in streams.items():
        for dname, make in detectors:
            det = make()
            al = alarms(det, xs)
            params = {k: v for k, v in vars(det).items()
                      if k in ("min_instances", "delta", "threshold", "alpha", "mode", "clock",
                               "max_buckets", "mwl", "grace")}
            out.append({"stream": sname, "detector": dname, "params": params, "alarms": al,
                        "final": det.state()})
    return streams, out


def check():
    xs = river_doc_stream()
    ph = PageHinkley()
    got = [(i, xs[i]) for i in alarms(ph, xs)]
    print("PageHinkley on River's docstring stream:", got[:3])
    assert got[0] == (1006, 5), "River documents: Change detected at index 1006, input value: 5"
    ad = Adwin()
    got = [(i, xs[i]) for i in alarms(ad, xs)]
    print("ADWIN on River's docstring stream:", got[:3])
    assert got[0] == (1023, 4), "River documents: Change detected at index 1023, input value: 4"
    print("both match River's documented examples")


def write(dirname):
    import os
    os.makedirs(dirname, exist_ok=True)
    path = os.path.join(dirname, "vectors.json")
    with open(path, "w") as f:
        # repr-exact floats: json writes Python floats with repr, which C's strtod reads back
        # bit for bit.
        streams, out = cases()
        json.dump({"generator": "scripts/drift_reference.py", "streams": streams, "cases": out}, f)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--check":
        check()
    elif len(sys.argv) >= 3 and sys.argv[1] == "--write":
        check()
        write(sys.argv[2])
    else:
        print(__doc__)
        print("usage: drift_reference.py --check | --write DIR")
        sys.exit(2)
