#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Small valid inputs of every parser (and a few near misses), made from tests/data, examples/ and
profiles/; the model configs come from `moeslice make-random` when a built binary is given:

    tests/fuzz/make_seeds.py [build/apps/moeslice]

Regression seeds (regress-*) are written by hand when a finding is fixed and are kept.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> the file's bytes."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = compact(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    write("safetensors_header", "two-tensors", safetensors(
        [("a.weight", "F32", [2, 2], f32), ("b", "BF16", [3], b"\x80\x3f\x00\x40\x00\x00")],
        {"format": "pt"}))
    write("safetensors_header", "empty-header", safetensors([]))
    write("safetensors_header", "all-dtypes", safetensors(
        [(d, d, [1], b"\x00" * n) for d, n in
         [("F64", 8), ("F16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1), ("U8", 1),
          ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1), ("U16", 2), ("U32", 4), ("U64", 8)]]))
    write("safetensors_header", "scalar-and-empty", safetensors(
        [("scalar", "F32", [], b"\x00\x00\x80\x3f"), ("empty", "F32", [0, 4], b"")]))
    truncated = safetensors([("a", "F32", [4], f32)])
    write("safetensors_header", "truncated", truncated[:-3])


def gguf_seeds():
    sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
    import make_gguf as g
    f32 = ("t", "F32", [2, 4], struct.pack("<8f", *range(8)))
    q8 = ("blk.0.ffn_up_exps.weight", "Q8_0", [2, 1, 32], (struct.pack("<e", 0.01) + bytes(range(32))) * 2)
    keys = [g.kv_string("general.architecture", "olmoe"), g.kv_u32("olmoe.expert_count", 2),
            g.kv_string_array("tokenizer.ggml.tokens", ["a", "b"]),
            g.string("nested") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)]
    write("gguf", "two-tensors", g.gguf(keys, [f32, q8]))
    write("gguf", "empty", g.gguf([], []))
    write("gguf", "split-keys", g.gguf([g.string("split.count") + struct.pack("<IH", 2, 1)], [f32]))
    write("gguf", "truncated", g.gguf(keys, [f32, q8])[:-40])
    # GGUF strings are bytes: a value and an array element that are not valid UTF-8.
    def raw_string(data):
        return struct.pack("<Q", len(data)) + data
    not_utf8 = [g.string("general.architecture") + struct.pack("<I", 8) + raw_string(b"ol\xffoe"),
                g.string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) +
                raw_string(b"\x8c") + raw_string(b"b")]
    write("gguf", "invalid-utf8-strings", g.gguf(not_utf8, [f32]))


def tokenizer_seeds():
    with open(os.path.join(ROOT, "examples", "models", "tokenizer.json"), encoding="utf-8") as f:
        full = json.load(f)
    # The example tokenizer cut to its first 300 merges and the tokens they need.
    merges = full["model"]["merges"][:300]
    vocab = {t: i for t, i in full["model"]["vocab"].items() if i < 256}
    for merge in merges:
        left, right = merge.split(" ")
        for token in (left, right, left + right):
            vocab.setdefault(token, full["model"]["vocab"][token])
    small = dict(full)
    small["model"] = dict(full["model"], vocab=vocab, merges=merges)
    text = "\0def main():\n    return 42  # the answer, \u00e9t\u00e9 <|endoftext|>"
    write("tokenizer", "byte-level", compact(small) + text)
    # Metaspace / byte fallback style, with Sequence normalizer and decoder and a template.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    vocab.update({"\u2581": 259, "a": 260, "b": 261, "c": 262, "\u2581a": 263, "ab": 264,
                  "\u2581ab": 265, "\u2581c": 266, "1": 267, "2": 268})
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(["<unk>", "<s>", "</s>"])]
    metaspace = {
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"}, {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "fuse_unk": True,
                  "byte_fallback": True, "vocab": vocab,
                  "merges": [["\u2581", "a"], ["a", "b"], ["\u2581a", "b"], ["\u2581", "c"]]},
    }
    write("tokenizer", "metaspace-byte-fallback", compact(metaspace) + "\0ab c 12 \u00e9\U0001F600 abc")
    lower = dict(metaspace, normalizer={"type": "Lowercase"},
                 pre_tokenizer={"type": "Metaspace", "replacement": "\u2581",
                                "prepend_scheme": "always", "split": True},
                 decoder={"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
                 post_processor={"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]})
    write("tokenizer", "metaspace-lowercase", compact(lower) + "\0AB  C\tab")
    split = dict(metaspace, normalizer={"type": "Strip", "left": True, "right": True},
                 pre_tokenizer={"type": "Split", "pattern": {"Regex": "\\s+"},
                                "behavior": "MergedWithPrevious", "invert": False},
                 post_processor={"type": "ByteLevel"}, decoder=None)
    write("tokenizer", "split-regex", compact(split) + "\0  a b\n\nc  ")


def corpus_seeds():
    data = os.path.join(ROOT, "tests", "data", "corpus")
    for name in ("text.jsonl", "lines.txt"):
        shutil.copy(os.path.join(data, name), os.path.join(CORPUS, "corpus_lines", name))
    write("corpus_lines", "token-ids.jsonl",
          '{"input_ids": [1, 2, 3], "id": "a"}\n{"input_ids": [4095], "domain": "x", "id": 7}\n'
          '\n{"text": "b\\u00e9", "domain": "d"}\n')
    write("corpus_lines", "bad-records.jsonl",
          '{"text": ""}\n{"text": 5}\n[1]\n{"input_ids": [-1]}\n{"text": "\xc3("}\n{"text": "ok"\n')
    shutil.copy(os.path.join(data, "tasks.jsonl"), os.path.join(CORPUS, "mc_tasks", "tasks.jsonl"))
    write("mc_tasks", "bad-tasks.jsonl",
          '{"context": "a", "choices": [" b"], "answer": 0}\n'
          '{"context": "a", "choices": [" b", " c"], "answer": 2}\n'
          '{"context": "", "choices": [" b", ""], "answer": 1, "id": "x", "domain": "y"}\n')


def plan_and_profile_seeds():
    with open(os.path.join(ROOT, "examples", "models", "emo-style", "config.json")) as f:
        config = json.load(f)
    layers, experts = config["num_hidden_layers"], config["num_experts"]
    write("keep_plan", "first-eight", compact(
        {"experts_kept_per_layer": [list(range(8)) for _ in range(layers)]}))
    write("keep_plan", "uneven-with-null", compact(
        {"experts_kept_per_layer": [[0, 3, 31], None, list(range(experts)), [0, 1]],
         "metric": "mass", "note": "extra keys are passed over"}))
    write("keep_plan", "wrong-layers", compact({"experts_kept_per_layer": [[0, 1]]}))
    # A usage file: 2 documents, 4 layers, 32 experts.
    docs = 2
    n = docs * layers * experts
    info = {"schema": 1, "layers": layers, "experts": experts, "family": "emo",
            "model": "examples/models/emo-style", "shared_experts": 1, "max_seq": 256,
            "compute": "f32", "keep_plan": None, "sources": [],
            "documents": [{"id": "a", "domain": "code"}, {"id": "b", "domain": "prose"}]}
    tensors = [("counts", "I32", [docs, layers, experts], struct.pack(f"<{n}i", *[i % 5 for i in range(n)])),
               ("gate_norm", "F32", [docs, layers, experts], struct.pack(f"<{n}f", *[0.25] * n)),
               ("mass", "F32", [docs, layers, experts], struct.pack(f"<{n}f", *[0.125] * n)),
               ("tokens", "I64", [docs], struct.pack("<2q", 10, 20))]
    write("usage_profile", "two-documents", safetensors(tensors, {"moeslice_usage": compact(info)}))
    info_empty = dict(info, documents=[])
    empty = [("counts", "I32", [0, layers, experts], b""), ("gate_norm", "F32", [0, layers, experts], b""),
             ("mass", "F32", [0, layers, experts], b""), ("tokens", "I64", [0], b"")]
    write("usage_profile", "no-documents", safetensors(empty, {"moeslice_usage": compact(info_empty)}))
    comparison = {
        "schema": 1, "model": "examples/models/emo-style", "corpus": "code.jsonl", "tasks": None,
        "variants": [
            {"label": "full", "kind": "full", "parameters": 7600000, "bytes": 15240000,
             "metrics": {"perplexity": 35.187, "top1_accuracy": 0.334, "tokens": 20000,
                         "nll": 3.56, "domains": {"code": {"perplexity": 35.0, "tokens": 20000}}}},
            {"label": "sliced-25", "kind": "sliced", "source": "out/sliced-25",
             "experts_per_layer": 8, "fraction_kept": 0.25, "parameters": 2900000, "bytes": 5780000,
             "metrics": {"perplexity": 39.214, "kl": 0.1393, "top1_agreement": 0.799,
                         "acc": 0.4, "acc_norm": 0.35, "tasks": 100},
             "change": {"perplexity": {"abs": 4.027, "rel": 0.114}, "acc": {"abs": -0.03, "rel": -0.07}}},
            {"label": "random-25", "kind": "plan", "plan": "plans/random.json"}]}
    write("comparison", "three-variants", json.dumps(comparison, indent=1))
    write("comparison", "minimal", '{"variants": [{"label": "a"}]}')


def profile_seeds():
    for name in sorted(os.listdir(os.path.join(ROOT, "profiles"))):
        with open(os.path.join(ROOT, "profiles", name), encoding="utf-8") as f:
            write("family_profile", name, compact(json.load(f)))


def config_seeds(binary):
    families = [name[:-5] for name in sorted(os.listdir(os.path.join(ROOT, "profiles")))]
    with tempfile.TemporaryDirectory() as scratch:
        for family in families:
            out = os.path.join(scratch, family)
            subprocess.run([binary, "make-random", "--family", family, "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
                write("model_config", family + ".json", compact(json.load(f)))
    with open(os.path.join(ROOT, "examples", "models", "emo-style", "config.json")) as f:
        write("model_config", "example-emo.json", compact(json.load(f)))


def main():
    for target in ("safetensors_header", "gguf", "tokenizer", "corpus_lines", "mc_tasks", "keep_plan",
                   "usage_profile", "comparison", "family_profile", "model_config"):
        os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    safetensors_seeds()
    gguf_seeds()
    tokenizer_seeds()
    corpus_seeds()
    plan_and_profile_seeds()
    profile_seeds()
    if len(sys.argv) > 1:
        config_seeds(sys.argv[1])


if __name__ == "__main__":
    main()
