"""Trains the example models' byte-level BPE tokenizer on the bundled corpus and writes it as a
Hugging Face tokenizer.json that `moeslice tokenize` (and the `tokenizers` library) read.

The pre-tokenizer is a Split regex written with ASCII classes only, so that Python's `re` here and
PCRE2 in moeslice split text identically; the model is byte-level BPE (GPT-2's byte-to-unicode
map), merges learned by pair frequency over the pre-tokens of the training splits. `Encoder`
below is the same tokenizer in Python, used by train_emo.py; examples/train/check_tokenizer.py
(a test) checks it against `moeslice tokenize`.

Usage: /usr/bin/python3 examples/train/train_tokenizer.py --data examples/data --vocab 4096
           --out examples/models/tokenizer.json
"""
import argparse
import collections
import glob
import json
import os
import re
import sys

WHITESPACE = " \\t\\r\\n\\f\\v"
SPLIT_PATTERN = (
    "'(?:s|t|re|ve|m|ll|d)"
    "| ?[A-Za-z]+"
    "| ?[0-9]{1,3}"
    f"| ?[^{WHITESPACE}A-Za-z0-9]+[\\r\\n]*"
    "|[ \\t\\f\\v]*[\\r\\n]+"
    f"|[{WHITESPACE}]+(?![^{WHITESPACE}])"
    f"|[{WHITESPACE}]+"
)
END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


BYTE_TO_CHAR = bytes_to_unicode()
SPLIT_RE = re.compile(SPLIT_PATTERN)


def pre_tokens(text):
    return ["".join(BYTE_TO_CHAR[b] for b in piece.encode("utf-8")) for piece in SPLIT_RE.findall(text)]


def train_merges(texts, num_merges):
    words = collections.Counter()
    for text in texts:
        words.update(pre_tokens(text))
    symbols = [list(w) for w in words]
    counts = [words[w] for w in words]
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)
    for i, sym in enumerate(symbols):
        for a, b in zip(sym, sym[1:]):
            pair_counts[a, b] += counts[i]
            where[a, b].add(i)
    merges = []
    for _ in range(num_merges):
        if not pair_counts:
            break
        # Most frequent pair; ties broken by the pair itself so the result is deterministic.
        best = max(pair_counts.items(), key=lambda item: (item[1], item[0]))[0]
        if pair_counts[best] <= 0:
            break
        merges.append(best)
        merged = best[0] + best[1]
        for i in sorted(where.pop(best, ())):
            sym = symbols[i]
            for a, b in zip(sym, sym[1:]):
                pair_counts[a, b] -= counts[i]
            out = []
            j = 0
            while j < len(sym):
                if j + 1 < len(sym) and sym[j] == best[0] and sym[j + 1] == best[1]:
                    out.append(merged)
                    j += 2
                else:
                    out.append(sym[j])
                    j += 1
            symbols[i] = out
            for a, b in zip(out, out[1:]):
                pair_counts[a, b] += counts[i]
                where[a, b].add(i)
        pair_counts = collections.Counter({p: c for p, c in pair_counts.items() if c > 0}) \
            if len(merges) % 256 == 0 else pair_counts
        pair_counts.pop(best, None)
    return merges


def tokenizer_json(merges):
    vocab = {}
    for b in range(256):
        vocab[BYTE_TO_CHAR[b]] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    eot_id = len(vocab)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eot_id, "content": END_OF_TEXT, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


class Encoder:
    """Encodes text exactly as the tokenizer.json written above does."""

    def __init__(self, path):
        spec = json.load(open(path, encoding="utf-8"))
        self.vocab = spec["model"]["vocab"]
        self.ranks = {tuple(m.split(" ")): r for r, m in enumerate(spec["model"]["merges"])}
        self.eot_id = spec["added_tokens"][0]["id"]
        self.vocab_size = max(self.vocab_size_of(spec), self.eot_id + 1)
        self.cache = {}
        self.char_to_byte = {c: b for b, c in BYTE_TO_CHAR.items()}
        self.id_to_token = {i: t for t, i in self.vocab.items()}

    @staticmethod
    def vocab_size_of(spec):
        return max(spec["model"]["vocab"].values()) + 1

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            ranked = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(ranked)
            if rank == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for word in pre_tokens(text):
            ids.extend(self.bpe(word))
        return ids

    def decode(self, ids):
        data = bytes(self.char_to_byte[c] for i in ids if i != self.eot_id for c in self.id_to_token[i])
        return data.decode("utf-8", errors="replace")


def training_texts(data_dir):
    paths = sorted(glob.glob(os.path.join(data_dir, "*", "train.jsonl")))
    if not paths:
        sys.exit(f"train_tokenizer: no */train.jsonl under {data_dir}")
    for path in paths:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)["text"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="examples/data")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--out", default="examples/models/tokenizer.json")
    args = parser.parse_args()
    merges = train_merges(list(training_texts(args.data)), args.vocab - 256 - 1)
    spec = tokenizer_json(merges)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(spec, out, ensure_ascii=False, indent=1)
        out.write("\n")
    os.replace(tmp, args.out)
    print(f"train_tokenizer: {len(merges)} merges, vocab {len(spec['model']['vocab']) + 1} -> {args.out}")


if __name__ == "__main__":
    main()
