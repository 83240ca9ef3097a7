#!/usr/bin/python3
"""The benchmark figures of README.md and docs/*.md, rendered from bench/results/*.json.

    bench/figures.py            rewrite every figure region of the docs from the results
    bench/figures.py --check    exit 1, with a diff, when a region differs from what the
                                committed results render (tests/integration/test_docs_figures.sh)
    bench/figures.py --table    print the headline table (bench/run_all.sh shows it)

A figure region in a Markdown file is generated text between two comments:

    <!-- figure: replay-detail -->
    ... do not edit: bench/figures.py writes this ...
    <!-- /figure -->

Each result file is written by bench/record.py: {"benchmark", "command", "date",
"machine", "results"}. A renderer reads the files it needs through `res(NAME)`;
the region then ends with a line naming each file used, with its command, date
and machine, so no figure appears without the run it came from.

Adding a benchmark (see docs/CONTRIBUTING.md):
  1. its script pipes its raw JSON through `bench/record.py NAME "COMMAND"`;
  2. add a function here that takes `res` and returns Markdown, and an entry in
     FIGURES (the region's name -> the function);
  3. put `<!-- figure: NAME -->` / `<!-- /figure -->` where the figure goes and run
     bench/figures.py. --check fails until every file in bench/results/ is shown
     by some region, so new results cannot sit unseen.
"""
import difflib
import glob
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
# Every document that may hold figure regions: the README and docs/*.md.
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
BEGIN = re.compile(r"^<!-- figure: ([a-z0-9-]+) -->$")
END = "<!-- /figure -->"


class Results:
    """Loads bench/results/NAME.json on demand and remembers which were used."""

    def __init__(self):
        self.used = []

    def __call__(self, name):
        path = os.path.join(RESULTS, name + ".json")
        if not os.path.exists(path):
            raise SystemExit("bench/results/%s.json is missing (its benchmark writes it)" % name)
        with open(path) as f:
            rec = json.load(f)
        for key in ("benchmark", "command", "date", "machine", "results"):
            if key not in rec:
                raise SystemExit("bench/results/%s.json has no %r: write it through bench/record.py"
                                 % (name, key))
        if name not in [n for n, _ in self.used]:
            self.used.append((name, rec))
        return rec["results"]


# ---- number formatting: the same everywhere ----

def num(v):
    """3,300,330 / 343 / 16.8 / 1.97 / 0.093: integers with separators, reals to about
    three significant figures (times below 1 ms to the microsecond)."""
    if v is None:
        return "-"
    if isinstance(v, int) or abs(v) >= 100:
        return "{:,}".format(int(round(v)))
    if abs(v) >= 10:
        return "%.1f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def short(v):
    """3.3M / 390k / 154k: rates for prose."""
    if v >= 1e6:
        return "%.1fM" % (v / 1e6)
    if v >= 1e3:
        return "%dk" % round(v / 1e3)
    return "%d" % v


def ratio(v):
    return "%.2fx" % v


# ---- the headline table: every benchmark against its peer or ceiling ----

REPLAY_CASES = {"dense32": "dense32 (float array)", "bin32": "bin32 (float32 bin)",
                "mlp784": "mlp784 (784-128-10)"}


def headline_rows(res):
    """(benchmark, metric, streamlearn, peer, peer value, higher_is_better or None)."""
    rows = []
    for r in res("replay"):
        rows.append(("replay " + r["case"], "samples/s", r["streamlearn"]["samples_per_s"],
                     "PyTorch loop", r["pytorch"]["samples_per_s"], True))
        if "msgpack_c_loop" in r:
            rows.append(("replay " + r["case"], "samples/s", r["streamlearn"]["samples_per_s"],
                         "msgpack-c decode+encode loop (C)", r["msgpack_c_loop"]["samples_per_s"],
                         True))
    k = res("kafka")
    w = {x["name"]: x for x in k["workers"]}
    n = k["samples"]
    rate = {name: round(n / x["steady_wall_s"]) for name, x in w.items()}
    cpu = {name: round(x["steady_cpu_s"] * 1e6 / n, 2) for name, x in w.items()}
    rows += [("kafka steady state", "samples/s (wall)", rate["streamlearn"], "PyTorch worker",
              rate["pytorch"], True),
             ("kafka steady state", "CPU us/sample", cpu["streamlearn"], "PyTorch worker",
              cpu["pytorch"], False),
             ("kafka steady state", "samples/s (wall)", rate["streamlearn"],
              "bare librdkafka loop (floor)", rate["bare"], True),
             ("kafka steady state", "CPU us/sample", cpu["streamlearn"],
              "bare librdkafka loop (floor)", cpu["bare"], False)]
    lat = res("latency")
    for q in ("p50", "p99", "max"):
        rows.append(("kafka latency @%s/s, %d min" % (short(lat["offered_per_s"]),
                                                     lat["seconds"] // 60),
                     q + " ms", lat[q + "_ms"], "bare loop, same input", lat["bare"][q + "_ms"],
                     None))
    for s in res("snapshot"):
        p = "1e%d params" % (len(str(s["params"])) - 1)
        sl, pt = s["streamlearn"], s["pytorch"]
        rows += [("snapshot " + p, "worker pause ms", sl["pause_ms"],
                  "torch.save + SET (loop waits)", pt["save_ms"], False),
                 ("snapshot " + p, "publish ms", sl["publish_ms"],
                  "redis SET of the blob (ceiling)", sl["redis_set_ms"], False),
                 ("snapshot " + p, "load ms", sl["load_ms"], "GET + torch.load", pt["load_ms"],
                  False)]
    return rows


def advantage(sl, pv, higher):
    """streamlearn/peer for rates, peer/streamlearn for times and costs: > 1 is ahead.
    A time below the clock's resolution (0.001) gives a lower bound."""
    if higher is None:
        return "-"
    if not higher and sl < 0.001:
        bound = pv / 0.001
        digits = 10 ** int(math.floor(math.log10(bound)))
        return "> %dx" % (bound // digits * digits)
    return ratio(sl / pv if higher else pv / sl)


def table(res):
    out = ["`advantage` > 1 means streamlearn is ahead: for throughput it is",
           "streamlearn / peer, for times peer / streamlearn.", "",
           "| benchmark | metric | streamlearn | peer | peer value | advantage |",
           "| --- | --- | ---: | --- | ---: | ---: |"]
    for bench, metric, sl, peer, pv, higher in headline_rows(res):
        slv = "< 0.001" if higher is False and sl < 0.001 else num(sl)
        out.append("| %s | %s | %s | %s | %s | %s |" % (bench, metric, slv, peer or "-", num(pv),
                                                       advantage(sl, pv, higher)))
    return "\n".join(out)


def readme_headline(res):
    rp = {r["case"]: r for r in res("replay")}
    d, m = rp["dense32"], rp["mlp784"]
    k = res("kafka")
    w = {x["name"]: x for x in k["workers"]}
    n = k["samples"]
    cpu = {name: x["steady_cpu_s"] * 1e6 / n for name, x in w.items()}
    rate = {name: n / x["steady_wall_s"] for name, x in w.items()}
    lat = res("latency")
    big = max(res("snapshot"), key=lambda s: s["params"])
    sl, pt = big["streamlearn"], big["pytorch"]
    rs = res("replay_scaling")
    sc = rs["samples_per_s"]
    cost = sorted(100 * (1 - sc[k] / sc["scale_off"]) for k in ("scale_standard", "defaults"))
    return "\n".join([
        "- `replay`, logistic dim 32: %s samples/s vs %s for the PyTorch loop (%.1fx); "
        "the default online feature scaling costs %.0f-%.0f%% of the speed (a separate run, "
        "the settings interleaved, best of %d at load %s: %s samples/s with `--scale off`, "
        "%s with `--scale standard`, %s with the defaults); softmax 784-128-10: %s vs %s "
        "(%.1fx)."
        % (short(d["streamlearn"]["samples_per_s"]), short(d["pytorch"]["samples_per_s"]),
           d["streamlearn"]["samples_per_s"] / d["pytorch"]["samples_per_s"], cost[0], cost[1],
           rs["rounds"], rs.get("load_avg_at_start", "?"), short(sc["scale_off"]),
           short(sc["scale_standard"]), short(sc["defaults"]),
           short(m["streamlearn"]["samples_per_s"]), short(m["pytorch"]["samples_per_s"]),
           m["streamlearn"]["samples_per_s"] / m["pytorch"]["samples_per_s"]),
        "- Kafka end to end on `dev-kafka`, steady state: %s µs of CPU per sample and %s "
        "samples/s, against %s µs and %s samples/s for a bare librdkafka consume→produce loop "
        "(%.2fx its CPU, %.2fx its wall time) and %s µs and %s samples/s for the "
        "confluent-kafka + torch worker; latency at %s samples/s offered for %d minutes with "
        "snapshots every %d s: p50 / p99 / max %d / %d / %d ms (the bare loop on the same "
        "input: %d / %d / %d)."
        % (num(round(cpu["streamlearn"], 2)), short(rate["streamlearn"]),
           num(round(cpu["bare"], 2)), short(rate["bare"]),
           cpu["streamlearn"] / cpu["bare"], rate["bare"] / rate["streamlearn"],
           num(round(cpu["pytorch"], 2)), short(rate["pytorch"]),
           num(lat["offered_per_s"]), lat["seconds"] // 60, lat["snapshot_every_ms"] // 1000,
           lat["p50_ms"], lat["p99_ms"], lat["max_ms"], lat["bare"]["p50_ms"],
           lat["bare"]["p99_ms"], lat["bare"]["max_ms"]),
        "- Snapshots of a 1e%d-parameter model: the worker thread pauses %s ms (PyTorch's "
        "`torch.save` + SET: %s ms, the loop waiting); publishing takes %s ms where a bare "
        "Redis SET of the same %d MB takes %s ms; loading %s ms vs %s ms for GET + "
        "`torch.load`."
        % (len(str(big["params"])) - 1, num(sl["pause_ms"]), num(pt["save_ms"]),
           num(sl["publish_ms"]), round(sl["bytes"] / 1e6), num(sl["redis_set_ms"]),
           num(sl["load_ms"]), num(pt["load_ms"])),
    ])


def replay_detail(res):
    out = ["| case | samples | streamlearn samples/s | RSS MB | CPU s | msgpack-c loop samples/s | "
           "vs loop | PyTorch samples/s | RSS MB | CPU s | vs PyTorch |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res("replay"):
        s, t, c = r["streamlearn"], r["pytorch"], r.get("msgpack_c_loop")
        out.append("| %s | %s | %s | %d | %g | %s | %s | %s | %d | %g | %.1fx |"
                   % (REPLAY_CASES.get(r["case"], r["case"]), num(r["samples"]),
                      num(s["samples_per_s"]), s["rss_kb"] // 1024, s["cpu_s"],
                      num(c["samples_per_s"]) if c else "-",
                      "%.2fx" % r["vs_msgpack_c_loop"] if c else "-",
                      num(t["samples_per_s"]), t["rss_kb"] // 1024, t["cpu_s"], r["speedup"]))
    return "\n".join(out)


def scaleout(res):
    out = ["| role | replicas | samples/s | CPU µs per sample |", "| --- | ---: | ---: | ---: |"]
    for r in res("scaleout"):
        out.append("| %s | %d | %s | %s |" % (r["role"], r["replicas"], num(r["samples_per_s"]),
                                              num(r["cpu_us_per_sample"])))
    return "\n".join(out)


def runs(res):
    """Every result file: its command, date and machine."""
    out = ["| results | command | date | machine |", "| --- | --- | --- | --- |"]
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
        name = os.path.basename(path)[:-5]
        res(name)
    return "\n".join(out + [
        "| `bench/results/%s.json` | `%s` | %s | %s |" % (name, rec["command"], rec["date"][:10],
                                                         machine_text(rec["machine"], True))
        for name, rec in res.used])


def _guard_fmt(v, p=0):
    if v is None or (isinstance(v, float) and (math.isinf(v) or math.isnan(v))):
        return "-"
    return f"{v:.{p}f}" if p else f"{v:,.0f}"


def guard_table(res):
    """docs/GUARD.md: guarded vs unguarded on seeded streams (medians over seeds)."""
    f = _guard_fmt
    out = ["| detector | stream | arm | accuracy (true labels) | accuracy (stream labels) | "
           "detection delay | false alarms / 1M | recovery (samples) | alarms | promotions | "
           "switches |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in res("guard")["table"]:
        g = a["guarded"]
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            a["detector"], a["scenario"], "guarded" if g else "unguarded", f(a["accuracy"], 4),
            f(a["accuracy_labels"], 4), f(a["detection_delay"]) if g else "-",
            f(a["false_alarms_per_1M"], 2) if g else "-", f(a["recovery_samples"]),
            f(a["alarms"]), f(a["promotions"]), f(a["switches"])))
    return "\n".join(out)


def guard_cpu(res):
    """docs/GUARD.md: CPU per sample of the learning step with and without the guard."""
    out = ["| detector | learning step, ns/sample: plain | guard, 0 challengers | "
           "guard, 2 challengers | replay ns/sample | projected replay with 2 challengers vs "
           "without guard | vs guard with 0 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in res("guard")["cpu"]:
        out.append("| %s | %.0f | %.0f | %.0f | %.0f | %.2fx | %.2fx |" % (
            r["detector"], r["ns_per_sample_plain"], r["ns_per_sample_guard0"],
            r["ns_per_sample_guard2"], r["replay_ns_per_sample"], r["projected_ratio"],
            r["projected_ratio_vs_guard0"]))
    return "\n".join(out)


# ---- docs/LEARNING.md: what the defaults learn ----

QUALITY_SETS = ["breast_cancer", "wine", "diabetes", "digits", "iris"]
QUALITY_FORMS = ["raw", "std", "hashed", "sparse"]


def score(v):
    """A prequential score: three decimals; a diverged one by its magnitude."""
    if v is None:
        return "-"
    if v < -99:
        return "diverges (-1e%d)" % round(math.log10(-v))
    return "%.3f" % v


def quality_rows(res, shape):
    rows = [r for r in res("quality")["rows"] if r["shape"] == shape]
    return sorted(rows, key=lambda r: (QUALITY_SETS.index(r["set"]), QUALITY_FORMS.index(r["form"])))


def diff(v):
    """+0.004 / -0.012: a difference of scores (never -0.000)."""
    return "%+.3f" % (round(v, 3) + 0.0)


def adam_cell(v, lr):
    return "%s (%g)" % (score(v), lr) if v is not None else "-"


def learning_quality(res):
    """docs/LEARNING.md: the defaults vs scikit-learn's SGD vs Adam tuned in hindsight."""
    out = ["| data set | form | score | defaults | sklearn SGD | Adam* scaled (lr) | "
           "Adam* `--scale off` (lr) | defaults - Adam* |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in quality_rows(res, "h0"):
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["set"].replace("_", " "), r["form"], "R²" if r["metric"] == "r2" else "accuracy",
            score(r["default"]), score(r["sklearn"]), adam_cell(r["adam_scaled"], r["adam_scaled_lr"]),
            adam_cell(r["adam_unscaled"], r["adam_unscaled_lr"]), diff(r["vs_adam"])))
    return "\n".join(out)


def learning_quality_hidden(res):
    """docs/LEARNING.md: the same with a hidden layer, and how many streams meet the bar."""
    rows = quality_rows(res, "h32")
    out = ["| data set | form | score | defaults | Adam* scaled (lr) | Adam* `--scale off` (lr) | "
           "defaults - Adam* |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            r["set"].replace("_", " "), r["form"], "R²" if r["metric"] == "r2" else "accuracy",
            score(r["default"]), adam_cell(r["adam_scaled"], r["adam_scaled_lr"]),
            adam_cell(r["adam_unscaled"], r["adam_unscaled_lr"]), diff(r["vs_adam"])))
    met = sum(1 for r in rows if r["meets_adam"])
    above = sum(1 for r in rows if r["vs_adam"] > 0)
    missed = ["%s %s by %.3f" % (r["set"].replace("_", " "), r["form"], -r["vs_adam"])
              for r in rows if not r["meets_adam"]]
    out += ["", "Within 0.01 of the tuned Adam on %d of the %d streams, above it on %d%s." % (
        met, len(rows), above, "; below by more: " + ", ".join(missed) if missed else "")]
    return "\n".join(out)


CANDIDATES = ["adam*", "adam", "adagrad 0.01", "adagrad 0.5", "cocob", "prodigy", "auto"]


def optim_candidates(res):
    """docs/LEARNING.md: the optimizer candidates in the PyTorch re-implementation."""
    rows = res("optim_candidates")["rows"]
    out = []
    for hidden in sorted({r["hidden"] for r in rows}, key=len):
        title = "no hidden layer" if not hidden else "`--hidden %s`" % hidden
        out += ["| %s | %s |" % (title, " | ".join(CANDIDATES)),
                "| --- |" + " ---: |" * len(CANDIDATES)]
        for r in sorted((r for r in rows if r["hidden"] == hidden),
                        key=lambda r: (r["set"], r["form"])):
            name = "%s %s%s" % (r["set"].replace("_", " "), r["form"],
                                " (R²)" if r["set"] == "diabetes" else "")
            out.append("| %s | %s |" % (name, " | ".join(score(r[c]) for c in CANDIDATES)))
        out.append("")
    lrs = [r["adam_best_lr"] for r in rows]
    gap = [r["auto"] - r["adam*"] for r in rows]
    out.append("Adam's best learning rate (`adam*`) ranges from %g to %g across these streams; "
               "`auto` - `adam*` from %s to %s." % (min(lrs), max(lrs), diff(min(gap)), diff(max(gap))))
    return "\n".join(out)


def replay_scaling(res):
    """docs/LEARNING.md: what online scaling costs, dense32, interleaved."""
    r = res("replay_scaling")
    sc = r["samples_per_s"]
    out = ["| setting | flags | samples/s (best of %d, interleaved) | vs `--scale off` |"
           % r["rounds"], "| --- | --- | ---: | ---: |"]
    for key, name, flags in (("scale_off", "`--scale off`", "`--optimizer adam --scale off`"),
                             ("scale_standard", "`--scale standard`",
                              "`--optimizer adam --scale standard`"),
                             ("defaults", "the defaults", "shape flags only")):
        out.append("| %s | %s | %s | %.2fx |" % (name, flags, num(sc[key]),
                                                 sc[key] / sc["scale_off"]))
    if "load_avg_at_start" in r:
        out += ["", "Load average when the run started: %s (the machine is shared with other work)."
                % r["load_avg_at_start"]]
    return "\n".join(out)


def kafka_detail(res):
    """docs/BENCHMARKS.md: the Kafka workers, steady state and whole process."""
    k = res("kafka")
    n = k["samples"]
    names = {"streamlearn": "`streamlearn run`", "bare": "bare librdkafka loop (floor)",
             "pytorch": "PyTorch worker"}
    out = ["| worker | steady wall s | steady samples/s | steady CPU µs/sample | whole-process "
           "wall s | whole-process CPU µs/sample | RSS MB |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in sorted(k["workers"], key=lambda x: ["streamlearn", "bare", "pytorch"].index(x["name"])):
        out.append("| %s | %s | %s | %s | %s | %s | %d |" % (
            names[x["name"]], num(round(x["steady_wall_s"], 3)), num(round(n / x["steady_wall_s"])),
            num(round(x["steady_cpu_s"] * 1e6 / n, 2)), num(round(x["wall_s"], 2)),
            num(round(x["cpu_s"] * 1e6 / n, 2)), int(x["rss_kb"]) // 1024))
    r = k["ratios"]
    out += ["", "Best of %d alternating rounds per figure. `streamlearn run` against the bare loop: "
            "CPU per sample %.2fx, wall %.2fx; CPU per sample %.2fx the PyTorch worker's." % (
                len(k["workers"][0]["rounds"]), r["steady_cpu_vs_bare"], r["steady_wall_vs_bare"],
                r["steady_cpu_vs_pytorch"])]
    return "\n".join(out)


def latency(res):
    """docs/BENCHMARKS.md and docs/KAFKA.md: latency under a steady offered load."""
    lat = res("latency")
    out = ["| | samples | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, x in (("`streamlearn run`", lat), ("bare loop, same input", lat["bare"])):
        out.append("| %s | %s | %d | %d | %d | %d | %d |" % (
            label, num(x["n"]), x["p50_ms"], x["p90_ms"], x["p99_ms"], x["p999_ms"], x["max_ms"]))
    out += ["", "%s samples/s offered for %d s on %d partitions, `--linger-ms %d`, batch %d, "
            "snapshots to Redis every %d ms (%d published)." % (
                num(lat["offered_per_s"]), lat["seconds"], lat["partitions"], lat["linger_ms"],
                lat["batch_size"], lat["snapshot_every_ms"], lat["snapshots_published"])]
    return "\n".join(out)


# The regions: name -> renderer. Add new benchmarks here.
FIGURES = {
    "readme-headline": readme_headline,
    "benchmarks-runs": runs,
    "benchmarks-table": table,
    "replay-detail": replay_detail,
    "scaleout": scaleout,
    "kafka-detail": kafka_detail,
    "latency": latency,
    "guard-table": guard_table,
    "guard-cpu": guard_cpu,
    "learning-quality": learning_quality,
    "learning-quality-hidden": learning_quality_hidden,
    "optim-candidates": optim_candidates,
    "replay-scaling": replay_scaling,
}


def machine_text(m, software=False):
    text = "%d cores, %s, %s GiB" % (m["nproc"], m["cpu"], m["mem_gib"])
    if software and m.get("software"):
        text += "; " + ", ".join("%s %s" % kv for kv in m["software"].items())
    return text


def render(name):
    res = Results()
    body = FIGURES[name](res)
    if name == "benchmarks-runs":  # the table is its own source line, and shows no figure
        return body, []
    groups = {}  # one clause per date and machine: most runs share both
    for n, rec in res.used:
        key = (rec["date"][:10], machine_text(rec["machine"]))
        groups.setdefault(key, []).append("`bench/results/%s.json` (`%s`)" % (n, rec["command"]))
    src = "; ".join("%s, run %s on %s" % (", ".join(files), date, machine)
                    for (date, machine), files in groups.items())
    return body + "\n\n" + "<sub>From " + src + ".</sub>", [n for n, _ in res.used]


def regions(text, path):
    """[(name, start, end)] line indexes of each region's body."""
    lines, found, open_at, fence = text.split("\n"), [], None, None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("```") and open_at is None:  # markers in code are examples
            ticks = stripped[:len(stripped) - len(stripped.lstrip("`"))]
            if fence is None:
                fence = ticks
            elif ticks == fence and stripped == ticks:
                fence = None
            continue
        if fence is not None:
            continue
        m = BEGIN.match(stripped)
        if m:
            if open_at is not None:
                raise SystemExit("%s:%d: figure region inside another" % (path, i + 1))
            if m.group(1) not in FIGURES:
                raise SystemExit("%s:%d: no renderer for figure %r in bench/figures.py (FIGURES)"
                                 % (path, i + 1, m.group(1)))
            open_at = (m.group(1), i)
        elif line.strip() == END:
            if open_at is None:
                raise SystemExit("%s:%d: %s without a begin" % (path, i + 1, END))
            found.append((open_at[0], open_at[1] + 1, i))
            open_at = None
    if open_at is not None:
        raise SystemExit("%s:%d: figure region not closed with %s" % (path, open_at[1] + 1, END))
    return found


def rendered_doc(path, shown):
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    lines = text.split("\n")
    for name, start, end in reversed(regions(text, path)):
        body, used = render(name)
        shown.update(used)
        lines[start:end] = [""] + body.split("\n") + [""]
    return text, "\n".join(lines)


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--write"
    if mode == "--table":
        res = Results()
        print(table(res))
        return 0
    if mode not in ("--write", "--check"):
        sys.exit(__doc__)
    shown, bad = set(), 0
    for path in DOCS:
        old, new = rendered_doc(path, shown)
        if old == new:
            continue
        if mode == "--write":
            with open(os.path.join(ROOT, path), "w") as f:
                f.write(new)
            print("updated", path)
        else:
            bad += 1
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), path, path + " (rendered)"))
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
        name = os.path.basename(path)[:-5]
        if name not in shown:
            bad += 1
            print("bench/results/%s.json is shown by no figure: add a renderer to FIGURES in "
                  "bench/figures.py and a region to the docs" % name)
    if mode == "--check" and bad:
        print("the docs' figures differ from bench/results/: run bench/figures.py and commit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
