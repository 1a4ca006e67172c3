#!/usr/bin/python3
"""A reference GGUF expert slicer in Python (gguf-py), for the proof in llama.cpp itself.

  /usr/bin/python3 tests/reference/slice_gguf.py --gguf-py DIR --model IN.gguf --plan PLAN.json
      --out OUT.gguf

The rule of issue 16, written independently of moeslice's C++ slicer so that the two can be held
to each other and the rule to llama.cpp (tests/cli/llama_parity.sh):
- in every block with a plan entry, each stacked expert tensor `blk.N.ffn_{gate,up,down,gate_up}_exps.*`,
  the router `blk.N.ffn_gate_inp.*` (not `ffn_gate_inp_shexp`) and `blk.N.exp_probs_b.*` keep the
  planned experts along their outermost ggml axis (ne[n_dims-1], which must be expert_count):
  each kept expert is one byte range whatever its type, copied unchanged, in ascending id order;
- `{arch}.expert_count` becomes the kept count and `{arch}.expert_used_count` min(k, kept);
- with expert groups (`{arch}.expert_group_count` > 1: llama.cpp splits the experts into equal
  consecutive groups) every group must keep the same number, at least 2 (llama.cpp scores a group
  by its top 2 experts), so the group count and groups used per token stay as they are;
- every other tensor and metadata key is copied unchanged, in order (general.alignment honoured).
No moeslice.* keys are written: compare a moeslice slice with this one on everything else.
Refused (exit 2, naming the plan or tensor): different kept counts per layer (llama.cpp has one
expert_count), a plan entry for a block without expert tensors, ids out of range or unsorted, a
plan whose layer count is not the file's block count, an unbalanced plan for expert groups.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_files import exit_code, import_gguf, write_atomically  # noqa: E402

gguf = None  # gguf-py, imported in main() from --gguf-py

CUT = re.compile(r"^blk\.(\d+)\.(ffn_(gate|up|down|gate_up)_exps|ffn_gate_inp|exp_probs_b)\.[a-z_]+$")


class PlanError(Exception):
    pass


def field(reader, key, default=None):
    f = reader.get_field(key)
    return default if f is None else f.contents()


def kept_experts(reader, plan_file, arch):
    """{block: [kept ids]} from the plan, checked against the file."""
    entries = json.load(open(plan_file))["experts_kept_per_layer"]
    blocks = field(reader, f"{arch}.block_count")
    experts = field(reader, f"{arch}.expert_count")
    if len(entries) != blocks:
        raise PlanError(f"{plan_file}: {len(entries)} entries, expected one per block ({blocks})")
    groups = field(reader, f"{arch}.expert_group_count") or 1
    with_experts = {int(m.group(1)) for t in reader.tensors if (m := CUT.match(t.name))}
    kept = {}
    for block, ids in enumerate(entries):
        if ids is None:
            continue
        if block not in with_experts:
            raise PlanError(f"{plan_file}: layer {block} has no expert tensors")
        if ids != sorted(set(ids)) or not all(0 <= i < experts for i in ids):
            raise PlanError(f"{plan_file}: layer {block}: ids must be ascending, unique, below {experts}")
        if groups > 1:
            per_group = [sum(1 for i in ids if i * groups // experts == g) for g in range(groups)]
            if len(set(per_group)) > 1 or per_group[0] < 2:
                raise PlanError(f"{plan_file}: layer {block} keeps {per_group} experts of its {groups} groups; "
                                "llama.cpp's group routing needs the same number in each, at least 2")
        kept[block] = ids
    counts = {len(ids) for ids in kept.values()} | ({experts} if len(kept) < len(with_experts) else set())
    if len(counts) > 1:
        raise PlanError(f"{plan_file}: kept counts differ across layers {sorted(counts)}; llama.cpp has one expert_count")
    return kept, (counts.pop() if counts else experts)


def slice_file(model, plan_file, out):
    reader = gguf.GGUFReader(model)
    arch = field(reader, "general.architecture")
    kept, count = kept_experts(reader, plan_file, arch)
    experts = field(reader, f"{arch}.expert_count")
    changed = {f"{arch}.expert_count": count,
               f"{arch}.expert_used_count": min(field(reader, f"{arch}.expert_used_count"), count)}

    def write(path):
        writer = gguf.GGUFWriter(path, arch)
        writer.data_alignment = field(reader, "general.alignment", gguf.GGUF_DEFAULT_ALIGNMENT)
        for f in reader.fields.values():
            if f.name == "general.architecture" or f.name.startswith("GGUF."):
                continue
            value_type = f.types[0]
            sub_type = f.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(f.name, changed.get(f.name, f.contents()), value_type, sub_type=sub_type)
        for t in reader.tensors:
            data = t.data
            match = CUT.match(t.name)
            if match and int(match.group(1)) in kept:
                if data.shape[0] != experts:
                    raise PlanError(f"tensor '{t.name}': outermost axis {data.shape[0]}, expected expert_count {experts}")
                data = data[kept[int(match.group(1))]]
            writer.add_tensor(t.name, np.ascontiguousarray(data), raw_dtype=t.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    write_atomically(out, write)


def main(argv=None):
    global gguf
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="gguf-py directory (tests/llama/extract_gguf_py.sh)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    gguf = import_gguf(args.gguf_py)
    return exit_code("slice_gguf", lambda: slice_file(args.model, args.plan, args.out), PlanError)


if __name__ == "__main__":
    sys.exit(main())
