"""Checks a sliced checkpoint against its source and plan, and an unsliced one against the source.

Usage: check_slice.py FULL_DIR SLICED_DIR PLAN.json [UNSLICED_DIR]
- every tensor of a kept expert is identical to the source's, under its renumbered name;
- router rows (and any expert-axis tensor) are the kept rows, in order;
- every other tensor is identical; dropped experts are gone;
- config.json has the expert count and experts per token rewritten, all other keys unchanged;
- pruning_metadata.json carries the kept ids;
- the unsliced checkpoint (if given) holds exactly the source's tensors.
Exits 1 with a message on the first mismatch.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
import torch  # noqa: E402
from safetensors_io import load_checkpoint  # noqa: E402

EXPERT = re.compile(r"^(model\.layers\.(\d+)\.(?:mlp|block_sparse_moe)\.experts\.)(\d+)(\..*)$")
ROUTER_ROWS = re.compile(r"^model\.layers\.(\d+)\.mlp\.(?:gate\.weight|gate\.e_score_correction_bias|router\.weight|router\.bias|experts\.(?:gate_up_proj|down_proj)(?:_bias|_blocks|_scales)?)$|^model\.layers\.(\d+)\.block_sparse_moe\.gate\.weight$")
EXPERT_KEYS = {"num_experts", "num_local_experts", "n_routed_experts"}


def fail(message):
    print(f"check_slice: {message}", file=sys.stderr)
    sys.exit(1)


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def main():
    full_dir, sliced_dir, plan_path = sys.argv[1:4]
    full = load_checkpoint(full_dir)
    sliced = load_checkpoint(sliced_dir)
    kept = json.load(open(plan_path))["experts_kept_per_layer"]
    expected = {}
    for name, tensor in full.items():
        m = EXPERT.match(name)
        if m and kept[int(m.group(2))] is not None:
            layer_kept = kept[int(m.group(2))]
            e = int(m.group(3))
            if e in layer_kept:
                expected[f"{m.group(1)}{layer_kept.index(e)}{m.group(4)}"] = tensor
            continue
        r = ROUTER_ROWS.match(name)
        if r:
            layer = int(r.group(1) or r.group(2))
            if kept[layer] is not None:
                expected[name] = tensor[kept[layer]]
                continue
        expected[name] = tensor
    if set(expected) != set(sliced):
        fail(f"tensor names differ: missing {sorted(set(expected) - set(sliced))[:5]}, "
             f"extra {sorted(set(sliced) - set(expected))[:5]}")
    for name, tensor in expected.items():
        if not same(tensor, sliced[name]):
            fail(f"tensor {name} differs from the source")
    full_config = json.load(open(os.path.join(full_dir, "config.json")))
    sliced_config = json.load(open(os.path.join(sliced_dir, "config.json")))
    k = len(next(entry for entry in kept if entry is not None))
    for key, value in full_config.items():
        if key in EXPERT_KEYS:
            if sliced_config[key] != k:
                fail(f"config {key} = {sliced_config[key]}, expected {k}")
        elif key == "num_experts_per_tok":
            if sliced_config[key] != min(value, k):
                fail(f"config num_experts_per_tok = {sliced_config[key]}, expected {min(value, k)}")
        elif sliced_config.get(key) != value:
            fail(f"config key {key} changed: {value} -> {sliced_config.get(key)}")
    metadata = json.load(open(os.path.join(sliced_dir, "pruning_metadata.json")))
    if metadata["experts_kept_per_layer"] != kept or metadata["prune_keep_k"] != k:
        fail("pruning_metadata.json does not record the plan")
    if len(sys.argv) > 4:
        unsliced = load_checkpoint(sys.argv[4])
        if set(unsliced) != set(full):
            fail("the unsliced checkpoint's tensor names differ from the source's")
        for name, tensor in full.items():
            if not same(tensor, unsliced[name]):
                fail(f"unsliced tensor {name} differs from the source")
    print(f"check_slice: {len(sliced)} tensors match")


if __name__ == "__main__":
    main()
