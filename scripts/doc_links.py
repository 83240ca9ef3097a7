#!/usr/bin/python3
"""Checks that no Markdown file of the repository cites something the repository
lacks (tests/integration/test_docs_links.sh):

  - relative links [text](path) and [text](path#anchor) resolve: the file or
    directory exists, and an anchor names a heading of the target (GitHub's
    anchors: lower case, punctuation dropped, spaces as dashes);
  - file paths named in code (`bench/replay.sh`, `tests/unit/test_<module>.c`,
    `k8s/base/`) exist, relative to the repository root or to the document:
    a path is checked when its first part is a top-level entry of the
    repository (a module may be named without its extension: `consumer/decode`),
    or when it is a bare file name with a source or document extension
    (`hooks.c`, `REDIS.md`: it must exist somewhere in the tree); `<...>` and
    `*` match anything; in commands (fenced blocks, code spans with spaces)
    only names with an extension are checked (`kubectl rollout undo
    deploy/streamlearn-trainer` names a Kubernetes object);
  - no document cites an internal agreement users never see: "CONTRACT" or a
    `*.md` file name the tree does not have.

    scripts/doc_links.py [FILE.md ...]      (default: every *.md of the repository)

Example output files (`init.safetensors`, `samples.msgpack`, `/tmp/...`) are
not checked: only names that look like the repository's own files are.
"""
import fnmatch
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKED_EXT = {"c", "h", "sh", "py", "md", "json", "yaml", "yml", "ini", "txt"}
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
TOKEN = re.compile(r"[A-Za-z0-9_.<>*/-]+")
MD_NAME = re.compile(r"\b([A-Z][A-Z0-9_]*\.md)\b")


def tree():
    """Every file and directory of the repository (tracked, plus new files not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [f for f in out.split("\n") if f]
    except (OSError, subprocess.CalledProcessError):
        files = [os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "**", "*"),
                                                             recursive=True)
                 if os.path.isfile(p) and not os.path.relpath(p, ROOT).startswith("build")]
    files = [f for f in files if os.path.exists(os.path.join(ROOT, f))]
    dirs = set()
    for f in files:
        parts = f.split("/")
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    return set(files), dirs


FILES, DIRS = tree()
TOP = {p.split("/")[0] for p in FILES | DIRS}
BASENAMES = {os.path.basename(f) for f in FILES}


def markdown_files():
    return sorted(f for f in FILES if f.endswith(".md"))


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    out, fenced = set(), False
    with open(os.path.join(ROOT, path)) as f:
        for line in f:
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced and line.startswith("#"):
                out.add(slug(line.lstrip("#")))
    return out


def exists(rel):
    """rel (normalised, '/'-separated, may hold <...> or *) names a file or directory."""
    rel = rel.rstrip("/")
    if "<" in rel or "*" in rel:
        pattern = re.sub(r"<[^>]*>", "*", rel)
        return any(fnmatch.fnmatch(p, pattern) for p in FILES | DIRS)
    return rel in FILES or rel in DIRS


def resolve(doc, target):
    """Candidates for a path named in doc: relative to the doc, then to the root."""
    base = os.path.dirname(doc)
    cands = [os.path.normpath(os.path.join(base, target)), os.path.normpath(target)]
    return [c for c in cands if not c.startswith("..")]


def check(doc):
    problems = []
    with open(os.path.join(ROOT, doc)) as f:
        lines = f.read().split("\n")
    fenced = False
    for n, line in enumerate(lines, 1):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if "CONTRACT" in line:
            problems.append((n, "cites CONTRACT, a document users do not have: say it here"))
        for name in MD_NAME.findall(line):
            if name not in BASENAMES:
                problems.append((n, "cites %s, which the repository does not have" % name))
        if not fenced:
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:
                path, _, anchor = target.partition("#")
                if path:
                    hits = [c for c in resolve(doc, path) if exists(c)]
                    if not hits:
                        problems.append((n, "link to %s: no such file or directory" % path))
                        continue
                    dest = hits[0]
                else:
                    dest = doc
                if anchor and dest.endswith(".md") and anchor not in anchors(dest):
                    problems.append((n, "link to %s#%s: no such heading" % (dest, anchor)))
        spans = [line] if fenced else CODE.findall(line)
        for span in spans:
            command = fenced or " " in span.strip()
            for tok in TOKEN.findall(span):
                tok = tok.rstrip(".,:;")
                if not tok or tok.startswith(("-", "/", "http")) or "//" in tok:
                    continue
                first, last = tok.split("/")[0], tok.rstrip("/").split("/")[-1]
                if command and "." not in last:
                    continue  # in a command, `deploy/NAME` is as likely a Kubernetes object
                if "/" in tok and first in TOP:
                    # a module is named without its extension: `consumer/decode`
                    if not any(exists(c) or exists(c + ".c") or exists(c + ".h")
                               for c in resolve(doc, tok)):
                        problems.append((n, "names %s, which the repository does not have" % tok))
                elif "/" not in tok and "." in tok:
                    ext = tok.rsplit(".", 1)[1]
                    if ext in CHECKED_EXT and not tok.startswith(".") and \
                            not any(fnmatch.fnmatch(b, re.sub(r"<[^>]*>", "*", tok))
                                    for b in BASENAMES):
                        problems.append((n, "names %s, which the repository does not have" % tok))
    return problems


def main(argv):
    docs = argv[1:] or markdown_files()
    bad = 0
    for doc in docs:
        for n, why in sorted(set(check(doc))):
            bad += 1
            print("FAIL - %s:%d: %s" % (doc, n, why))
    print("%d document(s) checked, %d problem(s)" % (len(docs), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
