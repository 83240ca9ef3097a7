#!/usr/bin/python3
"""Runs the shell and Python examples of the project's Markdown files, so an
example that stops working fails the test suite (tests/integration/test_docs_examples.sh).

    scripts/doc_examples.py [--bin PATH] [--list] [FILE.md ...]
        --bin   the streamlearn binary examples call as `streamlearn` (default: $SL_BIN)
        --list  print every example and what will happen to it, run nothing
        FILE.md only these files (default: every *.md of the repository)

THE MARKER CONVENTION (also in docs/CONTRIBUTING.md)

Every ```sh / ```bash / ```shell / ```python / ```py block must carry a marker
on the line just before its fence (blank lines between are allowed); an
unmarked one fails the test, so every new example is a decision:

    <!-- doc-test -->                   run it
    <!-- doc-test: redis -->            run it with a throwaway redis-server:
                                        redis://localhost:6379 in the block means that server
    <!-- doc-test: exit=2 -->           run it; it must exit with status 2 (showing an error)
    <!-- doc-test: timeout=300 -->      allow more than the default 120 s
    <!-- doc-test: file=NAME -->        write the block's text to NAME (any language, e.g. an
                                        ini block that later examples read); nothing runs
    <!-- doc-test: skip REASON -->      do not run it; REASON is required and says why, e.g.
                                        "skip needs a Kafka cluster", "skip needs Kubernetes"

Options combine: <!-- doc-test: redis exit=1 -->.

How examples run: the examples of one Markdown file run in order, in one fresh
temporary directory, so a file written by one example is there for the next.
Shell blocks run with `bash -e -o pipefail`; `streamlearn` on PATH is the
binary under test and `python3` is /usr/bin/python3 (Debian's, as on a fresh
machine). Python blocks of one file share one interpreter, so a function or
model defined in one block is there in the next (as a reader pasting them into
one session would have it). Nothing else is set up: an example needs what it
says it needs.
"""
import argparse
import glob
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"
SHELL = {"sh", "bash", "shell"}
PYTHON = {"python", "py", "python3"}
MARKER = re.compile(r"^<!--\s*doc-test(?::\s*(.*?))?\s*-->$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)")
DEFAULT_TIMEOUT = 120
LOCAL_REDIS = "redis://localhost:6379"


class Example:
    def __init__(self, path, line, lang, text, marker):
        self.path, self.line, self.lang, self.text = path, line, lang, text
        self.marker = marker  # None: unmarked
        self.skip = None
        self.redis = False
        self.exit = 0
        self.timeout = DEFAULT_TIMEOUT
        self.file = None
        self.error = None
        if marker is not None:
            self._parse(marker)

    def _parse(self, opts):
        opts = opts.strip()
        if opts.startswith("skip"):
            self.skip = opts[4:].strip()
            if not self.skip:
                self.error = "skip needs a reason: <!-- doc-test: skip needs a Kafka cluster -->"
            return
        for word in opts.split():
            key, _, value = word.partition("=")
            if key == "redis" and not value:
                self.redis = True
            elif key == "exit" and value.isdigit():
                self.exit = int(value)
            elif key == "timeout" and value.isdigit():
                self.timeout = int(value)
            elif key == "file" and value:
                self.file = value
            else:
                self.error = "unknown doc-test option %r (see scripts/doc_examples.py)" % word

    @property
    def where(self):
        return "%s:%d" % (self.path, self.line)

    @property
    def runnable(self):
        return self.lang in SHELL or self.lang in PYTHON


def extract(path):
    """The fenced blocks of one Markdown file that are examples or carry a marker."""
    with open(os.path.join(ROOT, path)) as f:
        lines = f.read().split("\n")
    out, i, last_marker = [], 0, None
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line.strip())
        if m:
            last_marker = (m.group(1) or "", i)
            i += 1
            continue
        f = FENCE.match(line)
        if not f:
            if line.strip():
                last_marker = None
            i += 1
            continue
        indent, fence, lang = f.group(1), f.group(2), f.group(3).lower()
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence))
                                      and lines[j].strip().strip(fence[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        marker = last_marker[0] if last_marker else None
        ex = Example(path, i + 1, lang, "\n".join(body) + "\n", marker)
        if ex.runnable or marker is not None:
            out.append(ex)
        last_marker = None
        i = j + 1
    return out


def markdown_files():
    files = []
    for p in sorted(glob.glob(os.path.join(ROOT, "**", "*.md"), recursive=True)):
        rel = os.path.relpath(p, ROOT)
        if rel.split(os.sep)[0].startswith(("build", ".")):
            continue
        files.append(rel)
    return files


# A Python "kernel": one interpreter per Markdown file that runs each block it is
# sent in a shared namespace and answers on the pipe named by argv[1] whether it raised.
KERNEL = r"""
import json, os, sys, traceback
ns = {"__name__": "__main__"}
out = os.fdopen(int(sys.argv[1]), "w")
for line in sys.stdin:
    req = json.loads(line)
    ok = True
    try:
        exec(compile(req["code"], req["where"], "exec"), ns)
    except SystemExit as e:
        ok = e.code in (None, 0)
        if not ok:
            print("SystemExit(%r)" % (e.code,), file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        ok = False
    sys.stdout.flush(); sys.stderr.flush()
    out.write(json.dumps({"ok": ok}) + "\n"); out.flush()
"""


class Kernel:
    def __init__(self, cwd, env, log):
        r, w = os.pipe()
        self.log = log
        self.proc = subprocess.Popen([PY, "-u", "-c", KERNEL, str(w)], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=log, stderr=log,
                                     pass_fds=(w,), text=True)
        os.close(w)
        self.replies = os.fdopen(r)

    def run(self, code, where, timeout):
        self.proc.stdin.write(json.dumps({"code": code, "where": where}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.replies], [], [], timeout)
        if not ready:
            self.close()
            return False, "timed out after %d s" % timeout
        line = self.replies.readline()
        if not line:
            return False, "the Python interpreter died"
        return json.loads(line)["ok"], ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Redis:
    def __init__(self, tmp):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def tail(path, n=3000):
    with open(path, errors="replace") as f:
        text = f.read()
    return text[-n:]


def run_shell(text, work, env, ex):
    """Runs one shell block in its own process group (a timeout ends all of it)."""
    p = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", text], cwd=work, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace", start_new_session=True)
    try:
        output, _ = p.communicate(timeout=ex.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        output, _ = p.communicate()
        return False, "timed out after %d s" % ex.timeout, output
    ok = p.returncode == ex.exit
    return ok, "" if ok else "exit status %d, expected %d" % (p.returncode, ex.exit), output


def run_file(path, examples, tmp, report):
    work = tempfile.mkdtemp(prefix=os.path.basename(path).replace(".", "_") + ".", dir=tmp)
    bindir = os.path.join(tmp, "bin")
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    kernel, redis = None, None
    log_path = work + ".python.log"  # beside the directory: examples see only their files
    log = open(log_path, "w")
    try:
        for ex in examples:
            if ex.skip is not None:
                continue
            text = ex.text
            if ex.redis:
                redis = redis or Redis(tmp)
                text = text.replace(LOCAL_REDIS, redis.url)
            if ex.file:
                with open(os.path.join(work, ex.file), "w") as f:
                    f.write(text)
                continue
            if ex.lang in SHELL:
                ok, why, output = run_shell(text, work, env, ex)
                report(ex, ok, why, output[-3000:])
            else:
                if ex.exit:
                    report(ex, False, "exit= applies to shell examples only", "")
                    continue
                kernel = kernel or Kernel(work, env, log)
                start = os.path.getsize(log_path)
                # blank lines first, so a traceback's line numbers are the Markdown file's
                ok, why = kernel.run("\n" * ex.line + text, ex.path, ex.timeout)
                log.flush()
                with open(log_path, errors="replace") as f:
                    f.seek(start)
                    output = f.read()
                report(ex, ok, why or ("raised" if not ok else ""), output[-3000:])
                if kernel.proc.poll() is not None:
                    kernel = None
    finally:
        if kernel:
            kernel.close()
        if redis:
            redis.close()
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("SL_BIN"))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    files = args.files or markdown_files()
    per_file = {f: extract(f) for f in files}

    counts = {"ok": 0, "fail": 0, "skip": 0}

    def report(ex, ok, why, output):
        if ok:
            counts["ok"] += 1
            print("ok - %s (%s)" % (ex.where, ex.lang))
        else:
            counts["fail"] += 1
            print("FAIL - %s (%s): %s" % (ex.where, ex.lang, why))
            for line in output.strip("\n").split("\n")[-40:] if output.strip() else []:
                print("    " + line)

    # Markers first: an unmarked or malformed example fails without running anything.
    runnable = {}
    for f, exs in per_file.items():
        keep = []
        for ex in exs:
            if ex.marker is None:
                report(ex, False, "unmarked example: put <!-- doc-test --> (runs) or "
                       "<!-- doc-test: skip REASON --> on the line before its fence", "")
            elif ex.error:
                report(ex, False, ex.error, "")
            elif ex.skip is not None:
                counts["skip"] += 1
                print("skip - %s (%s): %s" % (ex.where, ex.lang, ex.skip))
                keep.append(ex)
            elif not ex.runnable and not ex.file:
                report(ex, False, "a ```%s block cannot run; use file=NAME or skip" % ex.lang, "")
            else:
                if args.list:
                    print("run - %s (%s)%s" % (ex.where, ex.lang, " redis" if ex.redis else ""))
                keep.append(ex)
        runnable[f] = keep
    if args.list:
        return 0 if counts["fail"] == 0 else 1

    if not args.bin or not os.access(args.bin, os.X_OK):
        print("FAIL - no streamlearn binary: pass --bin or set SL_BIN")
        return 1
    tmp = tempfile.mkdtemp(prefix="sl-doc-examples.")
    try:
        bindir = os.path.join(tmp, "bin")
        os.mkdir(bindir)
        os.symlink(os.path.abspath(args.bin), os.path.join(bindir, "streamlearn"))
        os.symlink(PY, os.path.join(bindir, "python3"))
        for f, exs in runnable.items():
            if any(ex.skip is None for ex in exs):
                run_file(f, exs, tmp, report)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed, %d skipped (marked)" % (counts["ok"], counts["fail"],
                                                        counts["skip"]))
    return 0 if counts["fail"] == 0 else 1


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
